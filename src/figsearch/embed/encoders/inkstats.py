"""Orderless statistics of the ink of a line drawing: how it is drawn, not where.

Sheets of one design patent show the same object from different views, so a global layout
(HOG grid) changes from sheet to sheet while the drafting style stays: line weight, hatching
and stippling density, dashed lines, shading strokes. These functions measure that style at a
fixed *stroke* scale (the drawing is resized so that lines are ``STROKE_TARGET`` pixels wide),
which makes them independent of the resolution a sheet was scanned or rendered at.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: line width, in pixels, that drawings are brought to before their texture is measured
STROKE_TARGET = 3.0
#: ink threshold on the 0..1 darkness scale after resizing
INK_THRESHOLD = 0.4
#: largest side of the image the texture is measured on (bounds the cost of huge sheets)
MAX_TEXTURE_SIDE = 1600
LBP_RADII = (1, 2, 4)
RUN_BINS = 10


def darkness(image: Image.Image) -> np.ndarray:
    """Grey PIL image -> float32 array with paper 0 and ink 1."""
    return 1.0 - np.asarray(image, np.float32) / 255.0


def stroke_width(dark: np.ndarray) -> float:
    """Mean line width in pixels: ink mass over half the edge length (sub-pixel on antialiased lines)."""
    gy, gx = np.gradient(dark)
    edge = float(np.hypot(gx, gy).sum())
    return 2.0 * float(dark.sum()) / edge if edge > 1e-6 else 0.0


def resize_by(image: Image.Image, factor: float) -> Image.Image:
    size = (max(8, round(image.width * factor)), max(8, round(image.height * factor)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR)


def at_stroke_scale(image: Image.Image) -> Image.Image:
    """Resize a grey drawing so that its lines are about STROKE_TARGET pixels wide."""
    width = stroke_width(darkness(image))
    factor = STROKE_TARGET / max(width, 0.5) if width > 0 else 1.0
    factor = min(factor, MAX_TEXTURE_SIDE / max(image.size))
    return resize_by(image, factor)


def local_binary_patterns(ink: np.ndarray, radius: int) -> np.ndarray:
    """Histogram of the 3×3 (spaced by ``radius``) binary ink patterns, 512 bins, blank bin dropped.

    Not skimage.feature.local_binary_pattern: that is another descriptor (8 neighbours on a circle,
    diagonals interpolated, each compared with the centre, no centre bit), where this one reads
    the raw 3×3 ink pattern at square offsets, centre included; the shipped ``drawing`` model was
    trained on this one. skimage's also took 5.6 s/sheet vs 0.35 s here (radii 1, 2, 4, 20
    design-grant sheets at stroke scale).
    """
    h, w = ink.shape
    padded = np.pad(ink, radius)
    code = ink.astype(np.uint16)
    offsets = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
    for bit, (dy, dx) in enumerate(offsets, start=1):
        y, x = radius + dy * radius, radius + dx * radius
        code |= padded[y : y + h, x : x + w].astype(np.uint16) << bit
    hist = np.bincount(code.ravel(), minlength=512).astype(np.float32)
    hist[0] = 0.0  # all paper: says only how much margin there is
    return hist / max(hist.sum(), 1e-6)


def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of ink runs and of paper runs enclosed by ink, along the rows of a boolean array."""
    h, w = rows.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = rows
    flat = np.diff(padded.ravel())
    starts = np.flatnonzero(flat == 1)
    ends = np.flatnonzero(flat == -1)
    ink = ends - starts
    # paper between the end of one ink run and the start of the next one in the same row
    same_row = starts[1:] // (w + 2) == ends[:-1] // (w + 2)
    gaps = (starts[1:] - ends[:-1])[same_row]
    return ink, gaps


def run_length_histograms(ink: np.ndarray, bins: int = RUN_BINS) -> np.ndarray:
    """Log2-binned histograms of ink and gap run lengths, horizontally and vertically (4 × bins)."""
    parts = []
    for rows in (ink, ink.T):
        for lengths in _runs(rows):
            index = np.minimum(np.log2(np.maximum(lengths, 1)).astype(np.int32), bins - 1)
            hist = np.bincount(index, minlength=bins).astype(np.float32)
            parts.append(hist / max(hist.sum(), 1e-6))
    return np.concatenate(parts)
