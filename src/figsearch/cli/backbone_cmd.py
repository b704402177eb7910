"""``figsearch train-encoder --arch backbone``: the CLI side of ``embed.backbone_train``."""

from __future__ import annotations

from pathlib import Path

import click

from figsearch.errors import InputError


def _patents(path) -> list[str]:
    return [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()] if path else []


def train_backbone(collections, out, hidden, epochs, seed, batch_size, lr, val_fraction, threads, keep_headers,
                   exclude_file, train_fraction, command: str, levels=None, whiten=None, class_val_file=None,
                   val_split=None, distill=None, distill_weight=None, distill_temperature=None,
                   select_distractors=False, finetune=None, device=None, time_budget=None) -> None:
    from tqdm import tqdm

    from figsearch.train.backbone import BackboneSettings, run

    if not str(out).endswith(".onnx"):
        raise InputError(f"--arch backbone writes an ONNX model: give --out a name ending in .onnx (not {out})")
    if not 0 < train_fraction <= 1:
        raise InputError("--train-fraction must be in (0, 1]")
    exclude = _patents(exclude_file)
    extra = {}
    if levels:
        extra["levels"] = tuple(level.strip() for level in levels.split(",") if level.strip())
    if whiten is not None:
        extra["whiten"] = whiten
    if val_split:
        extra["val_split"] = val_split
    if distill:
        extra["distill"] = distill
    elif distill_weight is not None or distill_temperature is not None:
        raise InputError("--distill-weight and --distill-temperature need --distill (the teacher encoder)")
    if distill_weight is not None:
        extra["distill_weight"] = distill_weight
    if distill_temperature is not None:
        extra["distill_temperature"] = distill_temperature
    if select_distractors:
        extra["select_distractors"] = True
    extra.update(finetune or {})
    if device:
        extra["device"] = device
    if time_budget:
        extra["time_budget"] = time_budget
    settings = BackboneSettings(
        collections=[str(c) for c in collections], out=str(out), hidden=hidden or 0, epochs=epochs, seed=seed,
        batch_size=batch_size, lr=lr if lr is not None else 1e-3, val_fraction=val_fraction, threads=threads,
        strip_headers=not keep_headers, exclude=exclude, train_fraction=train_fraction, command=command,
        class_val=_patents(class_val_file), **extra,
    )
    bars: dict = {}

    def on_prepare(total: int):
        bars["prep"] = tqdm(total=total, desc="backbone features", unit="img", leave=False)
        return lambda n: bars["prep"].update(n)

    def on_epoch(stats: dict) -> None:
        if "prep" in bars:
            bars.pop("prep").close()
        tuning = stats.get("phase") == "finetune"
        click.echo(
            f"{'fine-tune ' if tuning else ''}epoch {stats['epoch']:3d}/{settings.finetune_epochs if tuning else epochs}  loss {stats['loss']:.4f}  val same-patent {stats['val_same_patent']}"
            f"  same-class {stats['val_same_class']}  words {stats['val_words']}"
            f"  same-patent among all {stats.get('val_same_patent_all')}{'  best' if stats.get('best') else ''}"
        )

    runner = run
    if settings.finetune_epochs > 0 or settings.bundle or settings.adapt_bn:  # the drawings themselves are passed
        from figsearch.train.finetune import run_finetune as runner
    result = runner(settings, on_message=click.echo, on_prepare=on_prepare, on_epoch=on_epoch)
    click.echo(f"wrote {result['out']} (best epoch {result['best_epoch']}: {result['best']}); record in {result['record_path']}")
