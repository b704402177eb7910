"""A visual encoder that first whitens what is not the drawing (figure labels, reference signs, leader lines).

Made by the encoder specification itself: ``backbone:drawing-backbone2.onnx@mask=labels`` is the
``backbone`` encoder with figure labels masked (``embed.preprocess.mask_drawing``). Because the
masking is part of the encoder, every path that encodes a drawing — ingest and re-index
(``pipeline.embed``), the Ray build's workers, a query by an uploaded image or by a figure not yet
indexed (``search.service``) — cleans it the same way, and the identity (hence the index key) names
the mask: an index built with one preprocessing is never searched with another; changing the mask
makes ``figsearch index`` build a new index. Without a mask the plain encoder is returned, so its
vectors and key are exactly those of before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from figsearch.embed.base import VisualEncoder
from figsearch.embed.preprocess import MASK_PARTS, mask_drawing, parse_mask

#: separates an encoder specification from its mask: ``SPEC@mask=labels,signs``
MASK_MARK = "@mask="


def split_mask(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"backbone:m.onnx@mask=labels"`` -> ("backbone:m.onnx", ("labels",)); no mark -> (spec, ())."""
    base, mark, parts = spec.rpartition(MASK_MARK)
    if not mark:
        return spec, ()
    return base, parse_mask(parts)


def mask_spec(spec: str, parts: Sequence[str]) -> str:
    """The specification of ``spec``'s encoder with ``parts`` masked (none: the plain spec)."""
    base, _ = split_mask(spec)
    parts = parse_mask(",".join(parts))
    return f"{base}{MASK_MARK}{','.join(parts)}" if parts else base


class MaskedEncoder(VisualEncoder):
    """``inner`` applied to drawings whose labels / signs / leader lines were whitened first."""

    def __init__(self, inner: VisualEncoder, parts: Sequence[str]) -> None:
        self.inner = inner
        self.parts = tuple(p for p in MASK_PARTS if p in set(parts))
        self.name = inner.name
        self.dim = inner.dim
        self.batch_size = inner.batch_size

    @property
    def identity(self) -> dict:
        return {**self.inner.identity, "mask": list(self.parts)}

    @property
    def sheet_context(self) -> float:  # the inner encoder's, which records it in the identity above
        return self.inner.sheet_context

    def clean(self, image):
        return mask_drawing(image, self.parts)

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        return self.inner._encode_batch([self.clean(image) for image in images])

    def encode(self, images: Iterable) -> np.ndarray:
        return self.inner.encode([self.clean(image) for image in images])

    def __getattr__(self, name: str):
        # everything else (the text adapter's encode_text_query, text_model, record, path, ...) is the inner encoder's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
