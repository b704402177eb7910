"""Drawing preprocessing shared by every visual encoder (and by encoder training).

Patent sheets carry wide white margins and arbitrary aspect ratios; stretching them
to a square distorts shapes, so margins are trimmed and the drawing is padded, not stretched.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from figsearch.imaging import to_grey

#: grey levels above this count as paper when trimming margins
PAPER_THRESHOLD = 235


def ink_box(image: Image.Image, threshold: int = PAPER_THRESHOLD, margin: int = 2) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the non-paper pixels, or None for a blank image."""
    pixels = np.asarray(to_grey(image))
    ink = pixels < threshold
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    h, w = pixels.shape
    return (
        max(int(cols[0]) - margin, 0),
        max(int(rows[0]) - margin, 0),
        min(int(cols[-1]) + 1 + margin, w),
        min(int(rows[-1]) + 1 + margin, h),
    )


def trim_margins(image: Image.Image, threshold: int = PAPER_THRESHOLD) -> Image.Image:
    image = to_grey(image)
    box = ink_box(image, threshold)
    return image.crop(box) if box else image


def pad_to_square(image: Image.Image, fill: int = 255) -> Image.Image:
    w, h = image.size
    side = max(w, h)
    return ImageOps.pad(image, (side, side), color=fill, centering=(0.5, 0.5)) if w != h else image


def prepare_drawing(image: Image.Image, size: int) -> Image.Image:
    """Grey, margins trimmed, padded to a square, resized to ``size``×``size`` (antialiased)."""
    square = pad_to_square(trim_margins(image))
    return square.resize((size, size), Image.Resampling.LANCZOS if square.width < size else Image.Resampling.BOX)
