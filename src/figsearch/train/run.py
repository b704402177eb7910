"""One training run as the CLI starts it: collections in, a model file and its record out.

Builds the model (seeded, so a run is reproducible), prepares the collections' drawings, runs the
``Trainer`` with a checkpoint next to the output, and writes the best model with a JSON record of
how it was made (command, data, seed, settings, validation curve, time, hardware).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class RunSettings:
    collections: list[str]
    out: str
    arch: str = "cnn"
    #: branches of the cnn: "layout", "style" or both
    branches: tuple[str, ...] = ("layout", "style")
    clip_model: str | None = None
    epochs: int = 40
    time_budget: float | None = None
    seed: int = 0
    image_size: int = 64
    input_scale: int = 4
    batch_size: int = 64
    lr: float | None = None
    val_fraction: float = 0.2
    patience: int = 10
    resume: bool = True
    device: str | None = None
    threads: int | None = None
    strip_headers: bool = True
    command: str = ""
    #: overrides of TrainConfig / NetConfig fields (research and tests)
    train_overrides: dict = field(default_factory=dict)
    net_overrides: dict = field(default_factory=dict)
    style_net_overrides: dict = field(default_factory=dict)
    style_options: dict = field(default_factory=dict)
    #: lines-head settings (dim, hidden, copies, projection); unset ones take LINES_HEAD_DEFAULTS
    head_options: dict = field(default_factory=dict)


def metadata_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def checkpoint_path(out: str | Path) -> Path:
    return Path(str(out) + ".ckpt")


def build_model(settings: RunSettings):
    """A fresh, seeded model of ``settings.arch``."""
    import torch

    from figsearch.train.architectures import architecture

    arch = architecture(settings.arch)
    torch.manual_seed(settings.seed)  # weight initialisation is part of the seeded run
    return arch.build(settings)


def run_training(
    settings: RunSettings,
    on_prepare: Callable[[int], Callable[[int], None]] | None = None,
    on_batch=None,
    on_epoch=None,
    on_message: Callable[[str], None] = log.info,
) -> dict:
    import torch

    from figsearch import __version__
    from figsearch.train.architectures import architecture
    from figsearch.train.samples import load_samples, prepare_samples, save_samples
    from figsearch.train.trainer import Trainer, TrainConfig
    from figsearch.train.trainset import collection_items, source_folders

    if settings.threads:
        from figsearch.train.backbone import set_torch_threads

        set_torch_threads(settings.threads)
    out = Path(settings.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    items = collection_items(settings.collections, strip_header=settings.strip_headers)
    model = build_model(settings)
    arch = architecture(settings.arch)
    lr = settings.lr if settings.lr is not None else arch.lr
    config = TrainConfig(
        epochs=settings.epochs, batch_size=settings.batch_size, lr=lr, val_fraction=settings.val_fraction,
        patience=settings.patience, seed=settings.seed, time_budget=settings.time_budget,
        **arch.train_defaults,
        **settings.train_overrides,
    )
    # preparing drawings (stroke scale, patches) is slow: a resumed run reuses what the first one prepared
    digest = hashlib.sha256(json.dumps([model.image_size, model.input_scale, model.settings]).encode())
    for sample_id, patent, _, image_digest in items:
        digest.update(f"{sample_id}\t{patent}\t{image_digest}\n".encode())
    cache = Path(str(checkpoint_path(out)) + ".samples.npz")
    samples = load_samples(cache, digest.hexdigest())
    if samples is None:
        progress = on_prepare(len(items)) if on_prepare else None
        samples = prepare_samples(model, items, progress)
        save_samples(samples, cache, digest.hexdigest())
    patents = len(set(samples.groups))
    trainer = Trainer(model, samples, config, checkpoint=checkpoint_path(out), device=settings.device)
    if not settings.resume and trainer.checkpoint.exists():
        trainer.checkpoint.unlink()
    resumed = trainer.resume()
    on_message(
        f"{'resuming' if resumed else 'training'} on {len(trainer.train)} drawings; validating on "
        f"{len(trainer.val)} drawings of {len(trainer.val_groups)} held-out patents "
        f"({patents} patents in all; device {trainer.device})"
        + (f"; from epoch {trainer.epoch + 1} batch {trainer.batch + 1}" if resumed else "")
    )
    started = time.monotonic()
    history = trainer.fit(on_batch=on_batch, on_epoch=on_epoch)
    best = None if trainer.best_map < 0 or not trainer.val_groups else round(trainer.best_map, 4)
    record = {
        "command": settings.command,
        "figsearch_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arch": settings.arch,
        "branches": model.branches,
        "seed": settings.seed,
        "data": {
            "collections": [str(Path(c)) for c in settings.collections],
            "source_folders": source_folders(settings.collections),
            "drawings": len(samples.ids),
            "patents": patents,
            "train_drawings": len(trainer.train),
            "validation_patents": sorted(trainer.val_groups),
            "fingerprint": trainer.fingerprint,
            "strip_headers": settings.strip_headers,
        },
        "train_config": config.to_dict(),
        "image_size": model.image_size,
        "input_scale": model.input_scale,
        "history": history,
        "best_val_map50": best,
        "branch_weights": model.settings.get("weights"),
        "calibration": trainer.calibration,
        "epochs_done": trainer.epoch,
        "stopped_early": trainer.finished and trainer.epoch < config.epochs,
        "train_seconds": round(trainer.elapsed, 1),
        "hardware": {
            "device": str(trainer.device),
            "gpu": torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda" else None,
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "torch": str(torch.__version__),
        },
        "complete": trainer.finished,
    }
    model.save(out, metadata=record)
    metadata_path(out).write_text(json.dumps(record, indent=2) + "\n")
    log.info("run took %.0f s in this process", time.monotonic() - started)
    return {
        "out": str(out),
        "metadata_path": str(metadata_path(out)),
        "best_val_map": best,
        "epochs_done": trainer.epoch,
        "train_seconds": trainer.elapsed,
        "history": history,
        "settings": asdict(settings),
    }
