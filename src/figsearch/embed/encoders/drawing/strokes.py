"""Patches of a drawing at a fixed stroke scale: what the style branch of the drawing encoder sees.

The sheets of one design patent show one object from different views, so their layout changes
from sheet to sheet while the drafting stays: line weight, hatching and stippling, dashed lines,
shading, lettering. To see that style the same way on every sheet, whatever resolution it was
scanned or rendered at and however large the drawing is on it, the sheet is resized so that its
lines are ``stroke`` pixels wide, trimmed, and cut into square patches on a half-overlapping grid;
patches with ink are kept, evenly spread over the drawing, at most ``max_patches`` of them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: longest side the sheet is brought to before its stroke width is measured (like ingest's bound)
MEASURE_SIDE = 1600
#: longest side after the stroke-scale resize (bounds the cost of fine sheets with thin lines)
MAX_SCALED_SIDE = 1400
#: ink level (0..255) of a pixel that counts as drawn, and the share of such pixels a patch needs
INK_LEVEL = 64
MIN_INK = 0.01


def stroke_width(dark: np.ndarray) -> float:
    """Mean line width in pixels of a darkness image (paper 0, ink 1): ink mass over half the edge length."""
    gy, gx = np.gradient(dark)
    edge = float(np.hypot(gx, gy).sum())
    return 2.0 * float(dark.sum()) / edge if edge > 1e-6 else 0.0


def at_stroke_scale(image: Image.Image, stroke: float) -> np.ndarray:
    """uint8 ink array (255 = ink) of the drawing resized so its lines are ``stroke`` px wide."""
    grey = image.convert("L") if image.mode != "L" else image
    if max(grey.size) > MEASURE_SIDE:
        grey = grey.copy()
        grey.thumbnail((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BOX)
    width = stroke_width(1.0 - np.asarray(grey, np.float32) / 255.0)
    factor = stroke / max(width, 0.5) if width > 0 else 1.0
    factor = min(factor, MAX_SCALED_SIDE / max(grey.size))
    return factor, grey


def style_patches(image: Image.Image, stroke: float = 2.0, size: int = 64, max_patches: int = 48) -> np.ndarray:
    """(k, size, size) uint8 ink patches, 1 <= k <= max_patches, deterministic for an image."""
    factor, grey = at_stroke_scale(image, stroke)
    scaled = (max(size, round(grey.width * factor)), max(size, round(grey.height * factor)))
    grey = grey.resize(scaled, Image.Resampling.BOX if factor < 1 else Image.Resampling.BILINEAR)
    ink = 255 - np.asarray(grey, np.uint8)
    drawn = ink > 40
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    if rows.size == 0:
        return np.zeros((1, size, size), np.uint8)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = ink.shape
    if h < size or w < size:
        ink = np.pad(ink, ((0, max(0, size - h)), (0, max(0, size - w))))
        h, w = ink.shape
    step = size // 2
    ys = list(range(0, h - size + 1, step)) + ([h - size] if (h - size) % step else [])
    xs = list(range(0, w - size + 1, step)) + ([w - size] if (w - size) % step else [])
    grid = [(y, x) for y in ys for x in xs]
    density = np.array([(ink[y : y + size, x : x + size] > INK_LEVEL).mean() for y, x in grid])
    keep = [c for c, d in zip(grid, density) if d >= MIN_INK] or [grid[int(np.argmax(density))]]
    if len(keep) > max_patches:
        keep = [keep[i] for i in np.linspace(0, len(keep) - 1, max_patches).round().astype(int)]
    return np.stack([ink[y : y + size, x : x + size] for y, x in keep])
