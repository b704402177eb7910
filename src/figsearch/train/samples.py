"""Training data prepared once: every drawing as its model's network input, with its patent.

Preparing (stroke scale, patches, lines descriptor) is the slow part of a run, so ``save_samples``
caches it beside the checkpoint and a resumed run reloads it with ``load_samples``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from figsearch.embed.encoders.drawing.model import DrawingModel, Prepared
from figsearch.errors import InputError


def prepare_for_training(model: DrawingModel, image, key: int) -> Prepared:
    """``model.prepare``, unless the architecture of the model's kind prepares training views its own way
    (``lines-head``: the features of augmented copies seeded by ``key``, the drawing's index)."""
    from figsearch.train.architectures import ARCHITECTURES

    if model.kind in ARCHITECTURES:
        return ARCHITECTURES.create(model.kind).prepare_for_training(model, image, key)
    return model.prepare(image)


@dataclass
class Samples:
    """Prepared training data, with the patent and an id of each drawing: layout ink maps (N, S, S)
    and/or style patches (M, P, P), those of drawing i at ``patches[offsets[i]:offsets[i + 1]]``;
    or lines features (N, views, F), view 0 the drawing itself and the others augmented copies."""

    maps: np.ndarray | None
    groups: list[str]
    ids: list[str]
    patches: np.ndarray | None = None
    offsets: np.ndarray | None = None
    features: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.groups) != len(self.ids) or (self.maps is not None and len(self.maps) != len(self.ids)):
            raise InputError("samples: maps, groups and ids differ in length")
        if self.patches is not None and (self.offsets is None or len(self.offsets) != len(self.ids) + 1):
            raise InputError("samples: style patches need one offset per drawing plus one")
        if self.features is not None and len(self.features) != len(self.ids):
            raise InputError("samples: features and ids differ in length")

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for sample_id, group in zip(self.ids, self.groups):
            digest.update(f"{sample_id}\t{group}\n".encode())
        for array in (self.maps, self.patches):
            digest.update(repr(None if array is None else array.shape).encode())
        if self.features is not None:  # only then: checkpoints of cnn runs keep their fingerprint
            digest.update(repr(self.features.shape).encode())
        return digest.hexdigest()[:16]

    def subset(self, index: np.ndarray) -> Samples:
        index = np.asarray(index, dtype=np.int64)
        maps = self.maps[index] if self.maps is not None else None
        patches = offsets = None
        if self.patches is not None:
            parts = [self.patches[self.offsets[i] : self.offsets[i + 1]] for i in index]
            patches = np.concatenate(parts) if parts else self.patches[:0]
            offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        features = self.features[index] if self.features is not None else None
        return Samples(maps, [self.groups[i] for i in index], [self.ids[i] for i in index], patches, offsets, features)

    def prepared(self, i: int) -> Prepared:
        maps = self.maps[i] if self.maps is not None else None
        patches = self.patches[self.offsets[i] : self.offsets[i + 1]] if self.patches is not None else None
        features = self.features[i, 0] if self.features is not None else None  # the drawing, not a copy
        return Prepared(maps, patches, features)


def samples_from_prepared(prepared: Sequence[Prepared], groups: list[str], ids: list[str]) -> Samples:
    maps = np.stack([p.map for p in prepared]) if prepared and prepared[0].map is not None else None
    patches = offsets = None
    if prepared and prepared[0].patches is not None:
        patches = np.concatenate([p.patches for p in prepared])
        offsets = np.concatenate([[0], np.cumsum([len(p.patches) for p in prepared])]).astype(np.int64)
    features = None
    if prepared and prepared[0].features is not None:
        features = np.stack([np.atleast_2d(p.features) for p in prepared]).astype(np.float32)
    return Samples(maps, list(groups), list(ids), patches, offsets, features)


def prepare_samples(model: DrawingModel, items: Sequence[tuple], progress=None) -> Samples:
    """``items``: (sample id, patent, loader returning a PIL image, ...). Drawings are prepared once."""
    prepared, groups, ids = [], [], []
    for sample_id, group, load, *_ in items:
        prepared.append(prepare_for_training(model, load(), len(prepared)))
        groups.append(group)
        ids.append(sample_id)
        if progress:
            progress(1)
    if not prepared:
        raise InputError("no drawings to train on")
    return samples_from_prepared(prepared, groups, ids)


def save_samples(samples: Samples, path: Path, key: str) -> None:
    from figsearch.fsutil import atomic_write_bytes

    arrays = {"key": np.array(key), "groups": np.array(samples.groups), "ids": np.array(samples.ids)}
    for name in ("maps", "patches", "offsets", "features"):
        if getattr(samples, name) is not None:
            arrays[name] = getattr(samples, name)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_samples(path: Path, key: str) -> Samples | None:
    """Samples prepared by an earlier run on the same drawings with the same input settings, else None."""
    try:
        with np.load(path) as data:
            if str(data["key"]) != key:
                return None
            get = (lambda name: data[name] if name in data.files else None)
            return Samples(
                get("maps"), data["groups"].tolist(), data["ids"].tolist(), get("patches"), get("offsets"), get("features")
            )
    except (OSError, KeyError, ValueError):
        return None


