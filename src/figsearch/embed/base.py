"""The encoder interfaces.

A visual encoder turns a batch of drawings into L2-normalised float32 vectors;
a text encoder does the same for sentences. Backends implement one method
(``_encode_batch``); batching and normalisation live here, once.
Backends register by name in ``VISUAL_ENCODERS`` / ``TEXT_ENCODERS`` exactly as a
plugin would, and are built with ``VISUAL_ENCODERS.create(name, **options)``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

import numpy as np

from figsearch.registry import Registry


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class _Encoder(abc.ABC):
    #: registry name, e.g. "hog", "drawing", "clip", "minilm"
    name: str = ""
    #: vector dimension
    dim: int = 0
    batch_size: int = 32

    @property
    def identity(self) -> dict:
        """Everything that decides the vectors (name, weights, settings): stored with an index,
        which refuses to mix vectors of encoders whose identities differ."""
        return {"name": self.name, "dim": self.dim}


class VisualEncoder(_Encoder):
    """Batch of PIL images (normalised drawings) in, (n, dim) float32 L2-normalised out."""

    #: the sheet's weight in the stored vector of a figure cut from it (``embed.sheet_context``; set from the
    #: spec's ``@sheet=``); 0: none. Encoders that support it record it in their identity.
    sheet_context: float = 0.0

    @abc.abstractmethod
    def _encode_batch(self, images: Sequence) -> np.ndarray: ...

    def encode(self, images: Iterable) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._encode_batch(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return l2_normalise(np.concatenate(parts))


class TextEncoder(_Encoder):
    """Batch of strings in, (n, dim) float32 L2-normalised out."""

    @abc.abstractmethod
    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._encode_batch(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return l2_normalise(np.concatenate(parts))


VISUAL_ENCODERS: Registry[VisualEncoder] = Registry("visual encoder")
TEXT_ENCODERS: Registry[TextEncoder] = Registry("text encoder")
