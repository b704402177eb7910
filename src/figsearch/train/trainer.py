"""Training of the drawing encoder on (drawing, patent) samples.

Positives of a drawing are its augmented copies and the other drawings of the same patent;
negatives are the rest of the batch (multi-positive InfoNCE). Held-out patents give a
validation mAP@50 after every epoch; the best model is kept and training stops early when it
no longer improves. Checkpoints are written periodically and a run resumes from its last one,
taking exactly the path the uninterrupted run would have taken (all randomness is derived from
seed, epoch and batch). The core knows nothing of collections: ``trainset`` reads those, and
``samples`` prepares the drawings once.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from figsearch.embed.encoders.drawing.model import DrawingModel, Inputs, ink_tensor
from figsearch.errors import InputError
from figsearch.train.augment import AugmentConfig, augment
from figsearch.train.metric import same_group_map
from figsearch.train.parts import batch_generator, epoch_batches, lr_at, split_groups, supcon_loss
from figsearch.train.samples import Samples

log = logging.getLogger(__name__)

#: layout-branch weights (style weight 1) tried on the validation patents
WEIGHT_GRID = (0.0, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4)

STYLE_AUGMENT = AugmentConfig(
    rotate_deg=5.0, p_quarter_turn=0.0, p_hflip=0.5, p_vflip=0.5, scale=(0.87, 1.15), aspect=0.05, shift=0.1,
    p_dilate=0.05, p_erode=0.05, p_blur=0.1, p_noise=0.15, noise_density=0.01, p_binarise=0.05, p_gamma=0.3, p_erase=0.0,
)


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 64
    #: sheets of one patent placed together in a batch
    per_group: int = 4
    #: augmented views of every drawing in a batch (2: each drawing is also its own positive)
    views: int = 2
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    temperature: float = 0.1
    #: share of the multi-drawing patents held out for validation
    val_fraction: float = 0.2
    #: epochs without a better validation mAP before stopping (0: never stop early)
    patience: int = 10
    seed: int = 0
    #: seconds of training before stopping (None: no limit); counted across resumes
    time_budget: float | None = None
    #: seconds between mid-epoch checkpoints
    checkpoint_every: float = 300.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: augmentation of style patches: framing and scan noise, but line weight (the style) left alone
    style_augment: AugmentConfig = field(default_factory=lambda: STYLE_AUGMENT)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = self.augment.to_dict()
        d["style_augment"] = self.style_augment.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["augment"] = AugmentConfig.from_dict(d.get("augment", {}))
        d["style_augment"] = AugmentConfig.from_dict(d.get("style_augment", {}))
        return cls(**d)


@dataclass
class EpochStats:
    epoch: int
    loss: float
    val_map: float | None
    val_detail: dict | None
    seconds: float
    lr: float
    best: bool


class Trainer:
    """Runs training of ``model`` on ``samples``; ``fit`` returns the history of epochs."""

    def __init__(
        self,
        model: DrawingModel,
        samples: Samples,
        config: TrainConfig,
        checkpoint: str | Path | None = None,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model.to(self.device)
        self.val_groups = split_groups(samples.groups, config.val_fraction, config.seed)
        names = sorted(set(samples.groups))
        index = {g: i for i, g in enumerate(names)}
        is_val = np.array([g in self.val_groups for g in samples.groups], dtype=bool)
        self.train = samples.subset(np.flatnonzero(~is_val))
        self.val = samples.subset(np.flatnonzero(is_val))
        self.train_labels = np.array([index[g] for g in self.train.groups], dtype=np.int64)
        if len(self.train) < 2:
            raise InputError(f"encoder training needs at least 2 training drawings, got {len(self.train)}")
        self.fingerprint = samples.fingerprint()
        self.steps_per_epoch = len(self._batches(0))
        self.optimizer = torch.optim.AdamW(model.module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.epoch, self.batch, self.elapsed = 0, 0, 0.0
        self.history: list[dict] = []
        self.best_map, self.best_state, self.stale = -1.0, None, 0
        self.calibration: dict | None = None
        self._epoch_loss: list[float] = []

    # -- data ------------------------------------------------------------------------------

    def _batches(self, epoch: int) -> list[np.ndarray]:
        c = self.config
        return epoch_batches(self.train_labels, c.batch_size, c.per_group, c.seed, epoch)

    def _train_step(self, idx: np.ndarray, epoch: int, batch: int) -> tuple[float, float]:
        c = self.config
        step = epoch * self.steps_per_epoch + batch
        lr = lr_at(step, c.epochs * self.steps_per_epoch, int(c.warmup_epochs * self.steps_per_epoch), c.lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        gen = batch_generator(c.seed, epoch, batch, self.device)
        rng = np.random.default_rng([c.seed, epoch, batch, 2])
        views = max(1, c.views)
        outputs: dict[str, list[torch.Tensor]] = {}
        self.model.module.train()
        for view in range(views):
            for branch, vectors in self.model.module(self._view(idx, gen, rng, (epoch, batch, view))).items():
                outputs.setdefault(branch, []).append(vectors)
        labels = torch.from_numpy(self.train_labels[idx]).to(self.device).repeat(views)
        # each branch learns on its own, so that neither leans on the other
        loss = sum(supcon_loss(torch.cat(v), labels, c.temperature) for v in outputs.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach()), lr

    def _view(self, idx: np.ndarray, gen: torch.Generator, rng: np.random.Generator, at: tuple) -> Inputs:
        """One augmented view of the drawings ``idx``: a random subset of each one's style patches, or
        one of each drawing's prepared copies (``at``: epoch, batch, view number)."""
        c, train = self.config, self.train
        inputs = Inputs(len(idx))
        if train.features is not None:
            # view v of drawing i: copy (offset_i + v) mod copies, so the two views of a drawing differ
            epoch, batch, view = at
            copies = train.features.shape[1]
            offsets = np.random.default_rng([c.seed, epoch, batch, 3]).integers(copies, size=len(idx))
            pick = (offsets + view) % copies
            inputs.features = torch.from_numpy(train.features[idx, pick]).to(self.device)
        if train.maps is not None:
            inputs.maps = augment(ink_tensor(train.maps[idx], self.device), c.augment, gen)
        if train.patches is not None:
            k = int(self.model.style_options.get("train_patches", 4))
            picks = []
            for i in idx:
                start, end = train.offsets[i], train.offsets[i + 1]
                picks.append(start + rng.choice(end - start, size=k, replace=bool(end - start < k)))
            patches = ink_tensor(train.patches[np.concatenate(picks)], self.device)
            inputs.patches = augment(patches, c.style_augment, gen)
            inputs.segments = torch.arange(len(idx), device=self.device).repeat_interleave(k)
        return inputs

    def embed(self, samples: Samples, batch: int = 64) -> np.ndarray:
        parts = [
            self.model.encode([samples.prepared(i) for i in range(start, min(start + batch, len(samples)))])
            for start in range(0, len(samples), batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.dim), np.float32)

    def validate(self) -> dict | None:
        """Validation mAP@50 on the held-out patents: per branch, and for the joint vector at each
        layout weight of ``WEIGHT_GRID``; ``map`` is the best joint score and ``layout_weight`` its weight.

        The branches are trained apart; how much each should count in the joint vector is a property
        of the data, so it is measured where nothing was trained, every epoch.
        """
        if len(self.val) < 2:
            return None
        branches = self.model.branches
        if len(branches) < 2:
            return {"map": same_group_map(self.embed(self.val), self.val.groups)}
        saved = dict(self.model.settings["weights"])
        vectors = {}
        try:
            for branch in branches:
                self.model.settings["weights"] = {b: float(b == branch) for b in branches}
                vectors[branch] = self.embed(self.val)
        finally:
            self.model.settings["weights"] = saved
        by_weight = {}
        for w in WEIGHT_GRID:
            joint = np.hstack([vectors["layout"] * w, vectors["style"]])
            joint /= np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-12)
            by_weight[w] = same_group_map(joint, self.val.groups)
        best = max(WEIGHT_GRID, key=lambda w: (round(by_weight[w], 6), -abs(w - 0.5)))
        return {
            "map": by_weight[best],
            "layout_weight": best,
            "branches": {b: round(same_group_map(v, self.val.groups), 4) for b, v in vectors.items()},
            "by_layout_weight": {str(w): round(v, 4) for w, v in by_weight.items()},
        }

    # -- checkpoints -----------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        if not self.checkpoint:
            return
        from figsearch.fsutil import atomic_write_bytes

        state = {
            "model": self.model.state(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.config.to_dict(),
            "fingerprint": self.fingerprint,
            "epoch": self.epoch,
            "batch": self.batch,
            "elapsed": self.elapsed,
            "history": self.history,
            "best_map": self.best_map,
            "best_state": self.best_state,
            "calibration": self.calibration,
            "stale": self.stale,
            "epoch_loss": self._epoch_loss,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(self.checkpoint, buffer.getvalue())
        log.info("checkpoint %s at epoch %d batch %d", self.checkpoint, self.epoch, self.batch)

    def resume(self) -> bool:
        """Load the checkpoint when there is one; False when training starts afresh."""
        if not self.checkpoint or not self.checkpoint.exists():
            return False
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(f"cannot read checkpoint {self.checkpoint}: {exc}") from exc
        if state.get("fingerprint") != self.fingerprint:
            raise InputError(
                f"checkpoint {self.checkpoint} was made on other training data; delete it or train without --resume"
            )
        ours, theirs = self.config.to_dict(), dict(state["config"])
        ours.pop("time_budget"), theirs.pop("time_budget", None)
        if ours != theirs:
            changed = sorted(k for k in ours if ours[k] != theirs.get(k))
            raise InputError(f"checkpoint {self.checkpoint} was made with other settings ({', '.join(changed)})")
        restored = DrawingModel.from_state(state["model"], str(self.checkpoint))
        self.model.module.load_state_dict(restored.module.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.batch, self.elapsed = state["epoch"], state["batch"], state["elapsed"]
        self.history, self.best_map, self.best_state = state["history"], state["best_map"], state["best_state"]
        self.stale, self._epoch_loss = state["stale"], state["epoch_loss"]
        self.calibration = state.get("calibration")
        log.info("resumed from %s at epoch %d batch %d", self.checkpoint, self.epoch, self.batch)
        return True

    # -- the loop --------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        c = self.config
        return self.epoch >= c.epochs or (c.patience > 0 and self.stale >= c.patience)

    def fit(
        self,
        on_batch: Callable[[int, int, int, float], None] | None = None,
        on_epoch: Callable[[EpochStats], None] | None = None,
    ) -> list[dict]:
        """Train until the epochs, the patience or the time budget run out. Leaves the best model in ``model``."""
        c = self.config
        started, last_save = time.monotonic(), time.monotonic()
        base_elapsed = self.elapsed
        while not self.finished:
            batches = self._batches(self.epoch)
            epoch_started = time.monotonic()
            lr = 0.0
            while self.batch < len(batches):
                loss, lr = self._train_step(batches[self.batch], self.epoch, self.batch)
                self._epoch_loss.append(loss)
                self.batch += 1
                self.elapsed = base_elapsed + time.monotonic() - started
                if on_batch:
                    on_batch(self.epoch + 1, self.batch, len(batches), loss)
                if c.time_budget is not None and self.elapsed >= c.time_budget:
                    log.info("time budget of %.0f s used up in epoch %d", c.time_budget, self.epoch + 1)
                    self.save_checkpoint()
                    self._restore_best()
                    return self.history
                if time.monotonic() - last_save >= c.checkpoint_every:
                    self.save_checkpoint()
                    last_save = time.monotonic()
            self._end_epoch(epoch_started, lr, on_epoch)
            self.save_checkpoint()
            last_save = time.monotonic()
        self._restore_best()
        return self.history

    def _end_epoch(self, epoch_started: float, lr: float, on_epoch) -> None:
        detail = self.validate()
        val = None if detail is None else detail["map"]
        # without held-out patents the last epoch counts as the best
        score = val if val is not None else float(self.epoch)
        best = score > self.best_map + 1e-6
        if best:
            self.best_map, self.stale, self.calibration = score, 0, detail
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.module.state_dict().items()}
        else:
            self.stale += 1
        stats = EpochStats(
            epoch=self.epoch + 1,
            loss=float(np.mean(self._epoch_loss)) if self._epoch_loss else float("nan"),
            val_map=val,
            val_detail=detail,
            seconds=time.monotonic() - epoch_started,
            lr=lr,
            best=best,
        )
        self.history.append(asdict(stats))
        self.epoch, self.batch, self._epoch_loss = self.epoch + 1, 0, []
        if on_epoch:
            on_epoch(stats)

    def _restore_best(self) -> None:
        if self.best_state is not None:
            self.model.module.load_state_dict(self.best_state)
        self.model.module.eval()
        if self.calibration and "layout_weight" in self.calibration:
            self.model.settings["weights"] = {**self.model.settings["weights"], "layout": self.calibration["layout_weight"]}
