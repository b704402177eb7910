"""Making a ``lines-backbone`` drawing encoder: a lines-head trained as ``--arch lines-head`` trains it,
beside a frozen pretrained backbone whose centring and whitening are fitted on the training drawings.

    python -m figsearch.train.lines_backbone -c COLLECTION [-c ...] --exclude FILE --out MODEL.pt

Steps (all on the training collections; the evaluation sets never enter):

1. every drawing of the collections (``train.backbone.collection_items``: deduplicated, ``--exclude``
   patents left out) is read once as the encoder reads it (``lines_backbone.prepare_sheet``) and
   described twice: raw ``lines`` blocks and the backbone's pooled features (each cached beside the
   output, so that a rerun with another backbone describes only what changed);
2. a seeded share of the multi-drawing patents is held out; a ``lines-head`` is trained on the rest
   exactly as ``figsearch train-encoder --arch lines-head`` does (``Trainer``, multi-positive InfoNCE,
   best epoch on the held-out patents);
3. the backbone branch's mean and whitened PCA (``whiten`` power of the eigenvalues) are fitted on
   the training drawings' features;
4. the branch weight is the one given (chosen beforehand on held-out data; see docs/encoder.md);
   the validation mAP@50 of the result on the held-out patents is recorded.

Imports torch: load it lazily.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import logging
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from figsearch.embed.encoders.backbone_nets import BACKBONES, build_backbone, file_digest, weights_path
from figsearch.embed.encoders.drawing.lines_backbone import LinesBackboneModel, prepare_sheet
from figsearch.embed.encoders.drawing.lines_head import lines_features
from figsearch.embed.encoders.drawing.model import ink_tensor
from figsearch.embed.preprocess import prepare_drawing
from figsearch.errors import CorruptInput, InputError

log = logging.getLogger(__name__)


@dataclass
class LinesBackboneSettings:
    collections: list[str]
    out: str
    backbone: str = "mobilenetv2"
    image_size: int = 224
    pool: str = "gem"
    #: output dimensions of the backbone branch (its whitened PCA)
    dim: int = 256
    #: power of the eigenvalues the PCA divides by (0: plain PCA, 0.5: full whitening)
    whiten: float = 0.5
    #: weight of the backbone branch (lines: 1)
    weight: float = 1.0
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-5
    patience: int = 5
    val_fraction: float = 0.2
    seed: int = 0
    threads: int | None = None
    exclude: list[str] = field(default_factory=list)
    command: str = ""


def fit_whitening(pooled: np.ndarray, dim: int, whiten: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean (C,), projection (C, dim)) of square-rooted pooled features: centre, L2-normalise, then the
    PCA's top ``dim`` axes divided by their standard deviation to the power ``2 * whiten``."""
    pooled = np.asarray(pooled, dtype=np.float64)
    mean = pooled.mean(axis=0)
    x = pooled - mean
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    dim = min(dim, x.shape[1], x.shape[0])
    _, s, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    eig = (s[:dim] ** 2) / max(len(x) - 1, 1)
    projection = vt[:dim].T / np.power(np.maximum(eig, 1e-12), whiten)
    return mean.astype(np.float32), projection.astype(np.float32)


def new_model(settings: LinesBackboneSettings, lines_model, mean: np.ndarray, projection: np.ndarray) -> LinesBackboneModel:
    """A ``lines-backbone`` model from a trained lines-head model, the ImageNet backbone and fitted statistics."""
    if settings.backbone not in BACKBONES:
        raise InputError(f"unknown backbone {settings.backbone!r}; choose one of: {', '.join(BACKBONES)}")
    package_file = weights_path(settings.backbone)
    channels = BACKBONES[settings.backbone][3]
    model = LinesBackboneModel(
        {
            "lines": dict(lines_model.settings["lines"]),
            "backbone": {
                "name": settings.backbone, "pool": settings.pool, "channels": channels, "dim": int(projection.shape[1]),
                "whiten": settings.whiten, "weights_file": package_file.name,
                "weights_sha256": file_digest(package_file), "licence": BACKBONES[settings.backbone][2],
            },
            "weights": {"lines": 1.0, "backbone": float(settings.weight)},
        },
        settings.image_size,
        1,
    )
    module = model.module
    module.lines.load_state_dict(lines_model.module.state_dict())
    module.backbone.features.load_state_dict(build_backbone(settings.backbone).state_dict())
    with torch.no_grad():
        module.backbone.mean.copy_(torch.from_numpy(mean))
        module.backbone.projection.copy_(torch.from_numpy(projection))
    module.eval()
    return model


def _cached(path: Path | None, key: str):
    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                if str(stored["key"]) == key:
                    return stored["features"]
        except (OSError, KeyError, ValueError):
            return None
    return None


def _images_digest(items) -> str:
    images = hashlib.sha256()
    for item in items:
        images.update(f"{item.figure_id}|{item.path}\n".encode())
    return images.hexdigest()


def _sheets(items):
    for item in items:
        try:
            with Image.open(item.path) as image:
                yield prepare_sheet(image)
        except (OSError, ValueError) as exc:
            raise CorruptInput(f"cannot read training image {item.path}: {exc}") from exc


def describe_lines(items, out: Path | None) -> np.ndarray:
    """Raw lines blocks (N, F) of the items, cached in ``OUT.lines.npz`` (keyed by the images)."""
    key = hashlib.sha256(f"lines-v1|{_images_digest(items)}".encode()).hexdigest()[:16]
    cache = Path(str(out) + ".lines.npz") if out is not None else None
    lines = _cached(cache, key)
    if lines is None:
        lines = np.stack([lines_features(sheet) for sheet in _sheets(items)]).astype(np.float32)
        if cache is not None:
            np.savez(cache, key=key, features=lines)
    return lines


def describe_pooled(items, name: str, image_size: int, pool: str, out: Path | None) -> np.ndarray:
    """Square-rooted pooled backbone features (N, C) of the items, cached per backbone, size and pooling
    in ``OUT.NAME-SIZE-POOL.npz``; one pass fills the caches of every pooling."""
    from figsearch.embed.encoders.drawing.lines_backbone import POOLS, BackboneBranch

    digest = _images_digest(items)
    keys = {p: hashlib.sha256(f"{name}|{p}|{image_size}|v1|{digest}".encode()).hexdigest()[:16] for p in POOLS}
    caches = {p: Path(f"{out}.{name}-{image_size}-{p}.npz") if out is not None else None for p in POOLS}
    pooled = _cached(caches[pool], keys[pool])
    if pooled is not None:
        return pooled
    branch = BackboneBranch({"name": name, "pool": pool, "channels": BACKBONES[name][3], "dim": 1})
    branch.features.load_state_dict(build_backbone(name).state_dict())
    branch.eval()
    parts: dict[str, list] = {p: [] for p in POOLS}
    greys: list = []

    def flush() -> None:
        if greys:
            with torch.inference_mode():
                from figsearch.embed.encoders.backbone_nets import normalise
                from figsearch.embed.encoders.drawing.lines_backbone import pool_features

                feature_map = branch.features(normalise(name, ink_tensor(np.stack(greys)) * 255.0))
                for p in POOLS:
                    parts[p].append(torch.sqrt(pool_features(feature_map, p) + 1e-12).numpy())
            greys.clear()

    for sheet in _sheets(items):
        greys.append(np.asarray(prepare_drawing(sheet, image_size), dtype=np.uint8))
        if len(greys) == 32:
            flush()
    flush()
    for p in POOLS:
        features = np.concatenate(parts[p]).astype(np.float32)
        if caches[p] is not None:
            np.savez(caches[p], key=keys[p], features=features)
        if p == pool:
            pooled = features
    return pooled


def train_lines_head(features: np.ndarray, groups: list[str], ids: list[str], settings: LinesBackboneSettings,
                     checkpoint: Path | None = None, on_epoch=None):
    """A lines-head trained as ``--arch lines-head`` trains it; returns (model, trainer)."""
    from figsearch.train.architectures import ARCHITECTURES, create_lines_head
    from figsearch.train.samples import Samples
    from figsearch.train.trainer import Trainer, TrainConfig

    torch.manual_seed(settings.seed)
    model = create_lines_head()
    arch = ARCHITECTURES.create("lines-head")
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                         val_fraction=settings.val_fraction, patience=settings.patience, seed=settings.seed,
                         **arch.train_defaults)
    samples = Samples(None, list(groups), list(ids), features=np.asarray(features, np.float32)[:, None, :])
    trainer = Trainer(model, samples, config, checkpoint=checkpoint, device="cpu")
    trainer.fit(on_epoch=on_epoch)
    return model, trainer


def run(settings: LinesBackboneSettings, on_message=log.info) -> dict:
    from figsearch import __version__
    from figsearch.train.backbone import collection_items, set_torch_threads, source_folders
    from figsearch.train.metric import same_group_map

    if settings.threads:
        set_torch_threads(settings.threads)
    started = time.monotonic()
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = collection_items(settings.collections, settings.exclude)
    if settings.backbone not in BACKBONES:
        raise InputError(f"unknown backbone {settings.backbone!r}; choose one of: {', '.join(BACKBONES)}")
    on_message(f"describing {len(items)} drawings (lines + {settings.backbone} at {settings.image_size} px)")
    lines = describe_lines(items, out)
    pooled = describe_pooled(items, settings.backbone, settings.image_size, settings.pool, out)
    described = time.monotonic() - started
    groups, ids = [i.patent for i in items], [i.figure_id for i in items]
    history = []
    head, trainer = train_lines_head(lines, groups, ids, settings, on_epoch=lambda s: history.append(
        {"epoch": s.epoch, "loss": round(s.loss, 4), "val_map50": None if s.val_map is None else round(s.val_map, 4)}))
    on_message(f"lines-head: best validation mAP@50 {trainer.best_map:.4f} after {trainer.epoch} epochs")
    train_index = np.array([g not in trainer.val_groups for g in groups])
    mean, projection = fit_whitening(pooled[train_index], settings.dim, settings.whiten)
    model = new_model(settings, head, mean, projection)
    val_index = np.flatnonzero(~train_index)
    val_scores = {}
    if len(val_index) > 1:
        val_groups = [groups[i] for i in val_index]
        lines_vectors = head.encode([_prepared(lines[i]) for i in val_index])
        branch = model.module.backbone
        with torch.no_grad():
            centred = torch.nn.functional.normalize(torch.from_numpy(pooled[val_index]) - branch.mean, dim=1)
            bb_vectors = torch.nn.functional.normalize(centred @ branch.projection, dim=1).numpy()
        joint = np.concatenate([lines_vectors, settings.weight * bb_vectors], axis=1)
        val_scores = {
            "lines_head": round(same_group_map(lines_vectors, val_groups), 4),
            "backbone": round(same_group_map(bb_vectors, val_groups), 4),
            "joint": round(same_group_map(joint / np.linalg.norm(joint, axis=1, keepdims=True), val_groups), 4),
        }
        on_message(f"validation mAP@50 on {len(val_index)} held-out drawings: {val_scores}")
    package_file = weights_path(settings.backbone)
    record = {
        "command": settings.command,
        "figsearch_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arch": "lines-backbone",
        "settings": asdict(settings),
        "starting_weights": {
            "backbone": settings.backbone, "file": package_file.name, "sha256": file_digest(package_file),
            "licence": BACKBONES[settings.backbone][2], "trained": False,
            "lines_head": "initialised as the lines_v1 projection (figsearch), trained here",
        },
        "data": {
            "collections": [str(Path(c)) for c in settings.collections],
            "source_folders": source_folders(items),
            "drawings": len(items),
            "patents": len(set(groups)),
            "excluded_patents": len(settings.exclude),
            "train_drawings": int(train_index.sum()),
            "validation_patents": sorted(trainer.val_groups),
        },
        "lines_head": {"history": history, "best_val_map50": round(trainer.best_map, 4), "epochs_done": trainer.epoch,
                       "train_seconds": round(trainer.elapsed, 1)},
        "validation": val_scores,
        "describe_seconds": round(described, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "hardware": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                     "torch": str(torch.__version__)},
    }
    model.save(out, metadata=record)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return {"out": str(out), "record": record}


def _prepared(features: np.ndarray):
    from figsearch.embed.encoders.drawing.model import Prepared

    return Prepared(None, None, features)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figsearch.train.lines_backbone", description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--collection", action="append", required=True, dest="collections")
    parser.add_argument("--out", required=True)
    parser.add_argument("--exclude", help="file of patent numbers (one a line) never trained on")
    defaults = LinesBackboneSettings([], "")
    for name in ("backbone", "image_size", "pool", "dim", "whiten", "weight", "epochs", "batch_size", "lr", "patience",
                 "val_fraction", "seed", "threads"):
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value) if value is not None else int, default=value)
    args = parser.parse_args(argv)
    exclude = []
    if args.exclude:
        exclude = [line.split()[0] for line in Path(args.exclude).read_text().splitlines() if line.strip()]
    options = {k: v for k, v in vars(args).items() if k not in ("collections", "out", "exclude")}
    canonical = " ".join(["python -m figsearch.train.lines_backbone", *(f"-c {c}" for c in args.collections),
                          f"--out {args.out}", *([f"--exclude {args.exclude}"] if args.exclude else []),
                          *(f"--{k.replace('_', '-')} {v}" for k, v in options.items() if v is not None)])
    settings = LinesBackboneSettings(collections=args.collections, out=args.out, exclude=exclude, command=canonical, **options)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(settings, on_message=print)
    print(f"wrote {result['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
