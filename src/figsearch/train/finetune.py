"""Fine-tuning the ``backbone`` encoder's upper blocks on the drawings themselves (issue 13, item 9).

``figsearch train-encoder --arch backbone --finetune-epochs N`` first trains the head on the frozen
backbone's features exactly as the frozen recipe does (``train.backbone.train_head``), then trains the
backbone's blocks from ``--finetune-from`` upwards together with the head, on a freshly augmented view
of every drawing each epoch (``train.augment``: framing, rotation and quarter turns, line weight, scan
noise, hidden parts), with the same losses (graded same-patent / same-class InfoNCE and the text
alignment). BatchNorm keeps its ImageNet statistics (small batches of line drawings would move them
far from what the pretrained filters expect), and an optional L2-SP pull (``--anchor``) keeps the
weights near the pretrained ones: naive fine-tuning on a few thousand drawings trained ImageNet's
semantics away in an early probe. Every epoch is validated on the held-out patents with the frozen
recipe's rule; the best epoch is kept, and epoch 0 (the head on the frozen backbone) competes too.

The drawings are read once into a **training bundle** (``OUT.bundle.npz``: prepared grey drawings,
their patents, class levels and text embeddings), so that a run can be moved to a machine with a GPU
that holds no collection (``--bundle FILE``). Runs on CUDA when present, else on the CPU (slowly:
docs/encoder.md gives the time per epoch). Imports torch: load it lazily.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from figsearch.errors import InputError
from figsearch.train.backbone import (
    LITE_BLOCKS, BackboneSettings, Head, Item, LevelNorm, Pooled, Validation, _excluded, _load_grey, batch_loss,
    collection_items, epoch_order, epoch_stats, level_channels, ordered_levels, selection_score, split_masks,
    training_hardware, train_head, write_model,
)

BUNDLE_VERSION = 1
_SEP = "\x1f"


@dataclass
class Bundle:
    """What training needs of a collection's drawings, in one file."""

    images: np.ndarray  # (N, S, S) uint8 prepared grey drawings (paper 255)
    items: list[Item]
    texts: np.ndarray | None  # (N, T) text embeddings, or None
    has_text: np.ndarray  # (N,) bool
    info: dict = field(default_factory=dict)


def bundle_key(items: Sequence[Item], settings: BackboneSettings) -> str:
    digest = hashlib.sha256(f"bundle|v{BUNDLE_VERSION}|{settings.image_size}|{settings.strip_headers}|"
                            f"{settings.text_model}\n".encode())
    for item in items:
        digest.update(f"{item.figure_id}|{item.path}|{item.text}\n".encode())
    return digest.hexdigest()[:16]


def save_bundle(bundle: Bundle, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.npz")
    items = bundle.items
    np.savez_compressed(
        tmp, images=bundle.images, figure_ids=np.array([i.figure_id for i in items]),
        patents=np.array([i.patent for i in items]), sources=np.array([i.source for i in items]),
        texts_raw=np.array([i.text for i in items]), levels=np.array([_SEP.join(i.levels) for i in items]),
        texts=bundle.texts if bundle.texts is not None else np.zeros((0, 0), np.float32),
        has_text=bundle.has_text, info=np.array(json.dumps(bundle.info)),
    )
    tmp.replace(path)


def load_bundle(path: str | Path) -> Bundle:
    """A bundle written by ``save_bundle``; InputError naming the file when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"training bundle {path} does not exist (it is written beside OUT as OUT.bundle.npz)")
    try:
        with np.load(path, allow_pickle=False) as stored:
            info = json.loads(str(stored["info"]))
            if info.get("version") != BUNDLE_VERSION:
                raise ValueError(f"bundle version {info.get('version')}, expected {BUNDLE_VERSION}")
            images = stored["images"]
            texts = stored["texts"]
            levels = [tuple(x for x in str(v).split(_SEP) if x) for v in stored["levels"]]
            items = [Item(str(f), str(p), "", str(t), lv, str(s)) for f, p, t, lv, s in
                     zip(stored["figure_ids"], stored["patents"], stored["texts_raw"], levels, stored["sources"])]
            has_text = stored["has_text"].astype(bool)
    except InputError:
        raise
    except Exception as exc:  # a damaged or foreign file: one clear error naming it
        raise InputError(f"cannot read the training bundle {path}: {exc}") from exc
    if images.ndim != 3 or len(images) != len(items):
        raise InputError(f"training bundle {path} is damaged: {images.shape} images for {len(items)} drawings")
    return Bundle(images, items, texts if texts.size else None, has_text, info)


def make_bundle(items: Sequence[Item], settings: BackboneSettings, progress: Callable[[int], None] | None = None) -> Bundle:
    """Prepare every drawing (the encoder's own preprocessing) and embed the texts."""
    from figsearch.embed.catalog import create_text

    images = np.zeros((len(items), settings.image_size, settings.image_size), np.uint8)
    for index, item in enumerate(items):
        images[index] = _load_grey(item.path, settings.image_size, settings.strip_headers)
        if progress and (index % 32 == 31 or index == len(items) - 1):
            progress(index % 32 + 1)
    has_text = np.array([bool(i.text) for i in items])
    texts = create_text(settings.text_model).encode([i.text or "" for i in items]).astype(np.float32)
    info = {"version": BUNDLE_VERSION, "key": bundle_key(items, settings), "image_size": settings.image_size,
            "strip_headers": settings.strip_headers, "text_model": settings.text_model,
            "collections": [str(c) for c in settings.collections], "excluded_patents": len(settings.exclude)}
    return Bundle(images, list(items), texts, has_text, info)


def cached_bundle(settings: BackboneSettings, out: Path, on_prepare=None, on_message=lambda text: None) -> Bundle:
    items = collection_items(settings.collections, settings.exclude)
    path = out.with_name(out.name + ".bundle.npz")
    if path.is_file():
        try:
            bundle = load_bundle(path)
        except InputError:
            bundle = None
        if bundle is not None and bundle.info.get("key") == bundle_key(items, settings):
            return bundle
    on_message(f"preparing {len(items)} drawings into {path}")
    bundle = make_bundle(items, settings, on_prepare(len(items)) if on_prepare else None)
    save_bundle(bundle, path)
    return bundle


def resolve_device(name: str) -> str:
    if not name:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: torch sees no CUDA GPU here (use --device cpu)")
    return name


def _vectors(module: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """Outputs of ``module`` for every drawing (no augmentation), as float32 numpy."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            parts.append(module(images[start : start + chunk, None].float()).float().cpu().numpy())
    return np.concatenate(parts)


def finetune_layers(pooled: Pooled) -> list[torch.nn.Module]:
    """The backbone's layers in network order, as ``--finetune-from`` counts them: MobileNetV2's ``features`` 0-18;
    EfficientNet-Lite 0 the stem, N + 1 its block N (level ``hN``), the last index the head convolution."""
    if pooled.name in LITE_BLOCKS:
        net = pooled.backbone.net
        return [torch.nn.ModuleList([net._conv_stem, net._bn0]), *net._blocks,
                torch.nn.ModuleList([net._conv_head, net._bn1])]
    return list(pooled.backbone.features)


def adapt_batchnorm(pooled: Pooled, images: torch.Tensor, chunk: int = 64) -> dict:
    """AdaBN: every BatchNorm's running mean and variance re-estimated as the average over one pass of ``images``
    (grey drawings, (N, S, S)); no weight changes. ImageNet's statistics describe photographs: on line drawings
    (mostly white paper) many channels sit far from them. Returns what the record keeps."""
    norms = [m for m in pooled.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    with torch.no_grad():
        for start in range(0, len(images), chunk):
            pooled(images[start : start + chunk, None].float())
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    pooled.eval()
    return {"layers": len(norms), "drawings": int(len(images)), "by": "train.finetune.adapt_batchnorm"}


def finetune(pooled: Pooled, trained: dict, images: torch.Tensor, patents: np.ndarray, levels: Sequence[tuple[str, ...]],
             texts: np.ndarray | None, has_text: np.ndarray | None, settings: BackboneSettings, device: str,
             on_epoch: Callable[[dict], None] | None = None, run_started: float | None = None) -> dict:
    """Train the backbone's upper blocks with the head (``trained`` by ``train_head``) on augmented drawings;
    ``pooled`` and the head are left at the best epoch. Returns the fine-tuning record. With
    ``settings.time_budget`` it stops after the epoch that crosses that many seconds since ``run_started``."""
    from figsearch.train.augment import AugmentConfig, augment

    started = time.time()
    torch.manual_seed(settings.seed)
    head = trained["head"].to(device)
    norm = LevelNorm(trained["mean"], trained["channels"], trained["weights"]).to(device)
    pooled = pooled.to(device)
    train, val, class_val, _ = split_masks(patents, settings)
    validation = Validation(patents, levels, texts, has_text, val, class_val)
    tt = torch.from_numpy(texts.astype(np.float32)).to(device) if texts is not None and settings.text_weight > 0 else None
    layers = finetune_layers(pooled)
    if not 0 <= settings.finetune_from < len(layers):
        raise InputError(f"--finetune-from must be a layer between 0 and {len(layers) - 1} of {settings.backbone}")
    for index, layer in enumerate(layers):
        for parameter in layer.parameters():
            parameter.requires_grad_(index >= settings.finetune_from)
    pooled.eval()  # BatchNorm keeps the ImageNet statistics throughout
    backbone_params = [p for p in pooled.parameters() if p.requires_grad]
    anchors = [p.detach().clone() for p in backbone_params]
    optimiser = torch.optim.AdamW([
        {"params": backbone_params, "lr": settings.backbone_lr, "weight_decay": 0.0, "peak": settings.backbone_lr},
        {"params": list(head.parameters()), "lr": settings.finetune_lr, "weight_decay": settings.weight_decay,
         "peak": settings.finetune_lr},
    ])

    def encode(grey: torch.Tensor) -> torch.Tensor:
        return head(norm(pooled(grey)))

    def validate() -> tuple:
        head.eval()
        every = _vectors(encode, images)
        with torch.no_grad():
            return validation.scores(every, lambda t: head.text_vectors(torch.from_numpy(t.astype(np.float32)).to(device)).cpu().numpy())

    untrained = trained["untrained"]
    base = (untrained["val_same_patent"], untrained["val_same_class"], None, untrained["val_same_patent_all"])
    start = validate()
    start_stats = epoch_stats(0, [0.0], start)

    def snapshot() -> tuple[dict, dict]:
        return ({k: v.detach().clone() for k, v in pooled.state_dict().items()},
                {k: v.detach().clone() for k, v in head.state_dict().items()})

    # with nothing to validate on, the lowest-loss epoch wins over the frozen start
    best = {"score": selection_score(settings, start, base, -np.inf), "epoch": 0, "state": snapshot()}
    train_idx = np.flatnonzero(train)
    per_epoch = int(np.ceil(len(train_idx) / settings.batch_size))
    total, step = settings.finetune_epochs * per_epoch, 0
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    config = AugmentConfig()
    curve = []
    stopped = False
    for epoch in range(1, settings.finetune_epochs + 1):
        if settings.time_budget and time.time() - (run_started or started) > settings.time_budget:
            stopped = True
            break
        head.train()
        flat = epoch_order(train_idx, patents, settings.seed, 1000 + epoch)
        losses = []
        for first in range(0, len(flat), settings.batch_size):
            idx = np.array(flat[first : first + settings.batch_size])
            factor = 0.5 * (1 + np.cos(np.pi * step / max(total, 1)))
            step += 1
            for group in optimiser.param_groups:
                group["lr"] = group["peak"] * factor
            grey = images[torch.as_tensor(idx, device=images.device)].float()[:, None]
            if settings.augment:  # augment works on ink maps (1 = ink)
                grey = 255.0 * (1.0 - augment(1.0 - grey / 255.0, config, generator))
            z = encode(grey)
            loss = batch_loss(z, head, idx, patents, levels, tt, has_text, settings)
            if settings.anchor > 0:
                loss = loss + settings.anchor * sum(((p - a) ** 2).sum() for p, a in zip(backbone_params, anchors))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        current = validate()
        score = selection_score(settings, current, base, -float(np.mean(losses)))
        stats = epoch_stats(epoch, losses, current)
        stats["seconds"] = round(time.time() - started, 1)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": snapshot()}
            stats["best"] = True
        curve.append(stats)
        if on_epoch:
            on_epoch({**stats, "phase": "finetune"})
    pooled.load_state_dict(best["state"][0])
    head.load_state_dict(best["state"][1])
    pooled.eval()
    head.eval()
    for parameter in pooled.parameters():
        parameter.requires_grad_(False)
    return {"epochs": settings.finetune_epochs, "from_block": settings.finetune_from, "backbone_lr": settings.backbone_lr,
            "head_lr": settings.finetune_lr, "anchor": settings.anchor, "augment": settings.augment,
            "augment_config": config.to_dict() if settings.augment else None, "start": start_stats, "curve": curve,
            "best_epoch": best["epoch"], "stopped_by_time_budget": stopped, "seconds": round(time.time() - started, 1)}


def run_finetune(settings: BackboneSettings, on_message: Callable[[str], None] = lambda text: None,
                 on_prepare=None, on_epoch: Callable[[dict], None] | None = None) -> dict:
    """``train-encoder --arch backbone`` from a bundle (written now, or given): features on the device, the head on
    the frozen features, then ``finetune_epochs`` of fine-tuning, then the ONNX file and its record."""
    from figsearch.embed.encoders.backbone_nets import build_backbone

    if settings.heads > 1:
        raise InputError("--heads averages heads trained on frozen features: it does not combine with fine-tuning or "
                         "--bundle")
    device = resolve_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if settings.bundle:
        bundle = load_bundle(settings.bundle)
        for name in ("image_size", "strip_headers", "text_model"):
            if bundle.info.get(name) != getattr(settings, name):
                raise InputError(f"training bundle {settings.bundle} was prepared with {name}={bundle.info.get(name)!r}, "
                                 f"not {getattr(settings, name)!r}")
        skip = {e.strip() for e in settings.exclude if e.strip()}
        keep = np.array([not _excluded(i.patent, skip) for i in bundle.items])
        if not keep.all():
            bundle = Bundle(bundle.images[keep], [i for i, k in zip(bundle.items, keep) if k],
                            None if bundle.texts is None else bundle.texts[keep], bundle.has_text[keep], bundle.info)
    else:
        bundle = cached_bundle(settings, out, on_prepare, on_message)
    items = bundle.items
    on_message(f"{len(items)} drawings of {len({i.patent for i in items})} patents; device {device}")
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    images = torch.from_numpy(bundle.images).to(device)
    levels = ordered_levels(settings.levels, settings.backbone)
    level_channels(settings.backbone, levels)
    pooled = Pooled(settings.backbone, build_backbone(settings.backbone), levels).to(device)
    patents = np.array([i.patent for i in items])
    adapted = None
    if settings.adapt_bn:  # on the training drawings only: the held-out ones stay unseen
        train_mask = split_masks(patents, settings)[0]
        adapted = adapt_batchnorm(pooled, images[torch.as_tensor(np.flatnonzero(train_mask), device=images.device)])
        on_message(f"BatchNorm statistics of {adapted['layers']} layers re-estimated on {adapted['drawings']} drawings")
    features = _vectors(pooled, images)
    feature_seconds = time.time() - started
    texts = bundle.texts if settings.text_weight > 0 else None
    has_text = bundle.has_text if texts is not None else None
    item_levels = [i.levels for i in items]
    trained = train_head(features, patents, item_levels, texts, has_text, settings,
                         (lambda stats: on_epoch({**stats, "phase": "head"})) if on_epoch else None, device=device)
    record = None
    if settings.finetune_epochs > 0:
        record = finetune(pooled, trained, images, patents, item_levels, texts, has_text, settings, device, on_epoch,
                          run_started=started)
        record["bundle"] = {k: bundle.info.get(k) for k in ("key", "collections", "excluded_patents")}
    # everything the model file is made of, in case the ONNX export fails on the training machine (another torch):
    # `figsearch train-encoder --from-checkpoint` writes the model from it elsewhere
    save_checkpoint(checkpoint_path(out), settings, items, trained, pooled, texts is not None, has_text,
                    time.time() - started, feature_seconds, record, adapted, device)
    return write_model(settings, items, trained, pooled, texts is not None, has_text, started, feature_seconds,
                       finetune=record, device=device, adapted_bn=adapted)


CHECKPOINT_VERSION = 1


def checkpoint_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".ckpt.pt")


def save_checkpoint(path: Path, settings: BackboneSettings, items: Sequence[Item], trained: dict, pooled: Pooled,
                    with_text: bool, has_text: np.ndarray | None, seconds: float, feature_seconds: float,
                    finetune_record: dict | None, adapted: dict | None, device: str) -> None:
    """A trained model as one torch file (tensors of 1,024 values or more in float16, as the shipped ONNX files store
    them; about half the float32 size, so that it travels back from a GPU machine)."""
    from dataclasses import asdict

    def half(state: dict) -> dict:
        return {k: v.detach().cpu().half() if v.is_floating_point() and v.numel() >= 1024 else v.detach().cpu()
                for k, v in state.items()}

    head: Head = trained["head"]
    shape = (head.proj.in_features, head.proj.out_features, head.mlp[0].out_features if head.mlp is not None else 0,
             head.text.in_features)
    torch.save({"version": CHECKPOINT_VERSION, "settings": asdict(settings), "items": [asdict(i) for i in items],
                "with_text": with_text, "has_text": has_text, "pooled": half(pooled.state_dict()),
                "head": half(head.state_dict()), "head_shape": shape,
                "trained": {k: v for k, v in trained.items() if k != "head"}, "finetune": finetune_record,
                "adapted_bn": adapted, "seconds": seconds, "feature_seconds": feature_seconds,
                "hardware": training_hardware(device), "device": device}, path)


def export_checkpoint(path: str | Path, out: str | Path) -> dict:
    """``figsearch train-encoder --from-checkpoint CKPT --out MODEL.onnx``: the ONNX model and record of a checkpoint
    written by a run on another machine (its record keeps that machine's hardware and times)."""
    from dataclasses import fields

    from figsearch.embed.encoders.backbone_nets import build_backbone

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"not a version-{CHECKPOINT_VERSION} checkpoint")
    except FileNotFoundError:
        raise InputError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # a damaged or foreign file
        raise InputError(f"{path} is not a figsearch training checkpoint ({exc})") from None
    names = {f.name for f in fields(BackboneSettings)}
    settings = BackboneSettings(**{k: v for k, v in ckpt["settings"].items() if k in names})
    settings.out = str(out)
    pooled = Pooled(settings.backbone, build_backbone(settings.backbone, pretrained=False),
                    ordered_levels(settings.levels, settings.backbone))
    pooled.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["pooled"].items()})
    head = Head(*ckpt["head_shape"])
    head.load_state_dict({k: v.float() for k, v in ckpt["head"].items()})
    trained = {**ckpt["trained"], "head": head}
    items = [Item(**i) for i in ckpt["items"]]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_model(settings, items, trained, pooled, ckpt["with_text"], ckpt["has_text"], time.time() - ckpt["seconds"],
                       ckpt["feature_seconds"], finetune=ckpt["finetune"], device=ckpt["device"],
                       hardware=ckpt["hardware"], adapted_bn=ckpt["adapted_bn"])
