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


def strip_running_header(image: Image.Image, top: float = 0.12, max_band: float = 0.03, min_gap: float = 0.02):
    """Whiten a running header ("U.S. Patent  Sep. 4, 2007  Sheet 2 of 7  US D528,368 S").

    Sheets printed from PDFs carry one; the bulk-data TIFFs do not. Its patent number is the same
    on every sheet of a patent: left in, it teaches the encoder to read the header instead of
    looking at the drawing. A header is a thin band of ink near the top followed by a wide gap.
    """
    grey = image.convert("L")
    ink = np.asarray(grey) < 128
    height = ink.shape[0]
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0 or rows[0] > top * height:
        return image
    gaps = np.flatnonzero(np.diff(rows) > min_gap * height)
    if gaps.size == 0:
        return image
    end = rows[gaps[0]]
    if end - rows[0] > max_band * height:
        return image
    pixels = np.array(grey)
    pixels[: end + 1] = 255
    return Image.fromarray(pixels)
