"""Histogram-of-oriented-gradients descriptors of line drawings (no weights, works offline).

``hog`` is the plain multi-scale HOG of the patent-image retrieval literature before deep
features: the drawing, margins trimmed and padded to a square, is cut into 1×1, 2×2, 4×4 and
8×8 cells, each with a 9-bin, magnitude-weighted orientation histogram. It is the baseline
that the ``lines`` descriptor (figsearch.embed.encoders.lines) builds on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from figsearch.embed.base import VISUAL_ENCODERS, VisualEncoder
from figsearch.embed.preprocess import prepare_drawing

#: side of the square the drawing is resized to; divisible by every cell count
HOG_SIZE = 256
HOG_CELLS = (1, 2, 4, 8)
HOG_BINS = 9


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude and unsigned orientation in [0, π) of a float image."""
    gy, gx = np.gradient(image)
    return np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)


def orientation_histogram(image: np.ndarray, bins: int = 18) -> np.ndarray:
    """One magnitude-weighted orientation histogram of a whole image, summing to 1."""
    gy, gx = np.gradient(image)
    # drawings are mostly paper: angles only where there is an edge (a large saving on big sheets)
    edge = (np.abs(gx) + np.abs(gy)) > 1e-3
    gx, gy = gx[edge], gy[edge]
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    index = np.minimum((angle * (bins / np.pi)).astype(np.int32), bins - 1)
    hist = np.bincount(index, np.hypot(gx, gy), bins)
    return (hist / max(hist.sum(), 1e-6)).astype(np.float32)


def hog_pyramid(image: np.ndarray, cells: Sequence[int] = HOG_CELLS, bins: int = HOG_BINS) -> np.ndarray:
    """Concatenated per-cell orientation histograms (each L2-normalised) of a square float image.

    Not skimage.feature.hog, for exactness and speed, measured on 20 design-grant sheets (1600 px):
    skimage's HOG with the same cells (cells_per_block=(1, 1), block_norm="L2") is close but not
    equal (cosine to this one min 0.9934, mean 0.9990: its gradient is zero on the border rows and
    columns and it normalises with another epsilon), so the shipped ``drawing`` model, a head
    trained on the ``lines`` blocks that include this pyramid, would give other vectors (cosine
    min 0.99939) and every number in the README would move (the ``hog`` encoder's own mAP@50 on the
    385 design-grant queries: 0.2730 with skimage's vs 0.2723, ``benchmarks/visual_map.py``'s
    measure); and it was slower: 233 vs 115 ms/sheet on the pyramid, 11.4 vs 19.7 sheets/s for the
    whole ``hog`` encoder.
    """
    magnitude, angle = gradients(image)
    index = np.minimum((angle * (bins / np.pi)).astype(np.int32), bins - 1)
    parts = []
    for n in cells:
        step = image.shape[0] // n
        crop = slice(0, step * n)
        m, b = magnitude[crop, crop], index[crop, crop]
        hist = np.zeros((n, n, bins), np.float32)
        for k in range(bins):
            hist[:, :, k] = np.where(b == k, m, 0).reshape(n, step, n, step).sum(axis=(1, 3))
        hist /= np.linalg.norm(hist, axis=2, keepdims=True) + 1e-6
        parts.append(hist.ravel())
    return np.concatenate(parts)


def hog_of_drawing(image, size: int = HOG_SIZE) -> np.ndarray:
    """HOG pyramid of a PIL drawing (trimmed and padded to a square first); ink is bright."""
    pixels = np.asarray(prepare_drawing(image, size), np.float32) / 255.0
    return hog_pyramid(1.0 - pixels)


@VISUAL_ENCODERS.register("hog", help="plain multi-scale HOG of the whole drawing (baseline, offline)")
class HogEncoder(VisualEncoder):
    name = "hog"
    dim = HOG_BINS * sum(n * n for n in HOG_CELLS)

    def __init__(self, size: int = HOG_SIZE) -> None:
        self.size = size

    @property
    def identity(self) -> dict:
        return {"name": self.name, "dim": self.dim, "size": self.size, "cells": list(HOG_CELLS), "version": 1}

    def _encode_batch(self, images: Sequence) -> np.ndarray:
        # square-rooted histograms (Hellinger) so that no single strong orientation dominates
        return np.stack([np.sqrt(hog_of_drawing(image, self.size)) for image in images])
