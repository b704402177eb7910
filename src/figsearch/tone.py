"""Tone normalisation of drawings: paper to white, ink to black (stop 25, a photographed drawing).

A photo of a drawing has grey paper and dark-grey ink, often lit unevenly; the encoders were trained
on white paper and black ink, and grey paper alone took EP1667425A1 FIG. 1 from 0.99 to 0.57 against
itself. So an image whose paper is not white is normalised in two steps:

1. the paper's light, estimated per region (the brightest level around each cell of a coarse grid,
   ``LIGHT_CELLS``/``LIGHT_WINDOW``, smoothed), divides the image: the paper becomes 255 wherever the
   light falls, and a light that fades across the sheet no longer fades into the drawing; what lies around
   the sheet (a table: cells with no paper near them, joined to the image's edge, holding at least half of
   its edge cells) is whitened, so that it is trimmed as a margin rather than drawn as a frame;
2. a linear stretch from the histogram's levels: the ink level to 0, the paper level to 255.

An image whose paper is already white (``WHITE_SHARE`` of its pixels at ``PAPER_WHITE`` or above: a
scan, a PDF rendering, every stored drawing of the stop-24 collection: docs/encoder.md, "Stop 25") is
returned as it is, the same object, pixel for pixel, so that no stored vector changes. Only the paper
decides: light or anti-aliased ink on white paper is left alone, and so is a crop that is mostly ink.

Levels come from the grey histogram (one C pass over the pixels, then 256 bins):

- paper (of a sheet that is not white): the level below which all but ``PAPER_SHARE`` of the pixels
  lie (the bright end of the sheet; a drawing is mostly paper);
- ink: among the pixels clearly darker than the paper (``INK_GAP``), the level below which
  ``INK_SHARE`` of them lie (the cores of the strokes, whatever share of the sheet they cover).

The settings were chosen on drawings of even-numbered us-design-2007 patents (the training side) with
``benchmarks/photo_copies.py`` and its variants (docs/encoder.md, "Stop 25").
"""

from __future__ import annotations

#: levels at or above this are white paper
PAPER_WHITE = 250
#: an image with at least this share of its pixels white has white paper: it is left exactly as it is
#: (a small share, so that a clean crop that is mostly ink, or a dark drawing, still counts as clean)
WHITE_SHARE = 0.02
#: share of the pixels brighter than the paper level (specks, glare, the very white)
PAPER_SHARE = 0.05
#: share of the ink pixels darker than the ink level
INK_SHARE = 0.10
#: a pixel darker than the paper by this much counts as ink when the ink level is looked for
INK_GAP = 32
#: paper and ink closer than this: nothing to stretch (a blank sheet; its noise would become ink)
MIN_RANGE = 48
#: ink pixels needed before an ink level is trusted (fewer: a blank sheet with specks)
MIN_INK = 64
#: the paper's light is estimated on a grid of about this many cells along the longer side
LIGHT_CELLS = 32
#: each cell's light is the brightest in a window of this many cells (wider than any stroke)
LIGHT_WINDOW = 3
#: the light is never taken below this share of the paper level (a large dark area is not paper)
LIGHT_FLOOR = 0.7
#: whiten what lies around the sheet (a table): cells with no paper near them, reached from the image's
#: edge, and this many cells beyond them (the strip of table in the cells along the sheet's edge)
SURROUND_REACH = 2
#: ... when they hold at least this share of the grid's edge cells: a table around the sheet does, a dark
#: part of a drawing that a tight crop cut at one edge does not
SURROUND_EDGE = 0.5
#: off: the surroundings stay as the division leaves them
WHITEN_SURROUND = True


def tone_levels(histogram) -> tuple[int, int] | None:
    """(paper, ink) levels of a 256-bin grey histogram; None for an empty one."""
    import numpy as np

    counts = np.asarray(histogram, dtype=np.int64)[:256]
    total = int(counts.sum())
    if total == 0:
        return None
    cumulative = np.cumsum(counts)
    paper = int(np.searchsorted(cumulative, (1.0 - PAPER_SHARE) * total))
    darker = max(paper - INK_GAP, 0)
    ink_total = int(cumulative[darker - 1]) if darker > 0 else 0
    if ink_total < MIN_INK:
        return paper, paper
    ink = int(np.searchsorted(cumulative, INK_SHARE * ink_total))
    return paper, ink


def normalise_tone(image):
    """``image`` (8-bit grey, PIL) with paper white and ink black; the same object when its paper is
    already white (``WHITE_SHARE`` of its pixels at ``PAPER_WHITE`` or above), or when paper and ink are
    too close to tell apart (``MIN_RANGE``)."""
    if image.mode != "L":
        raise ValueError(f"normalise_tone takes an 8-bit grey image (mode L), not mode {image.mode}")
    total = image.width * image.height
    if total == 0 or _white_at_the_top(image, WHITE_SHARE * total):
        return image
    histogram = image.histogram()
    if sum(histogram[PAPER_WHITE:]) >= WHITE_SHARE * total:
        return image
    paper, ink = tone_levels(histogram)
    if paper - ink < MIN_RANGE:
        return image
    # the light first, per region (a photo's light falls off across the sheet), then the ink
    image = _flat_field(image, paper)
    paper, ink = tone_levels(image.histogram())
    if paper - ink < MIN_RANGE:
        return image
    scale = 255.0 / (paper - ink)
    table = [min(255, max(0, round((v - ink) * scale))) for v in range(256)]
    return image.point(table)


def _white_at_the_top(image, needed: float, band_pixels: int = 1 << 16, share: float = 0.125) -> bool:
    """Whether the top ``share`` of ``image``'s rows already hold ``needed`` pixels at ``PAPER_WHITE`` or
    above, counted band by band (about ``band_pixels`` each) until they do: a scanned sheet's top margin
    answers in its first band, for a 30th of the CPU of the whole image's histogram (about 2 ms of a
    grant sheet's ingest, docs/performance.md, "Stop 26"). False says nothing: the whole image decides."""
    width, height = image.size
    rows = max(1, band_pixels // max(width, 1))
    found = 0
    for top in range(0, max(1, int(height * share)), rows):
        found += sum(image.crop((0, top, width, min(top + rows, height))).histogram()[PAPER_WHITE:])
        if found >= needed:
            return True
    return False


def _flat_field(image, paper: int):
    """``image`` divided by its paper's light, estimated per region: paper 255 wherever the light falls."""
    import numpy as np
    from PIL import Image, ImageFilter

    width, height = image.size
    cell = max(1, max(width, height) // LIGHT_CELLS)
    small = image.reduce(cell) if cell > 1 else image
    light = np.asarray(small.filter(ImageFilter.MaxFilter(LIGHT_WINDOW)).filter(ImageFilter.BoxBlur(1)))
    floor = np.uint8(min(255, int(np.ceil(LIGHT_FLOOR * paper))))
    surround = _surround(light < floor) if WHITEN_SURROUND else None
    # the floor on the coarse grid: the light, resized between values at or above it, stays above it
    light = Image.fromarray(np.maximum(light, floor))
    # one float image, divided in place: the sheet's pixels are the cost here, not the grid's
    flat = np.asarray(light.resize((width, height), Image.Resampling.BILINEAR), np.float32)
    np.divide(np.float32(255.0), flat, out=flat)
    flat *= np.asarray(image)
    flat += np.float32(0.5)
    np.minimum(flat, np.float32(255.0), out=flat)
    out = flat.astype(np.uint8)
    if surround is not None and surround.any():
        mask = Image.fromarray(surround.astype(np.uint8) * 255).resize((width, height), Image.Resampling.NEAREST)
        out[np.asarray(mask) > 0] = 255
    return Image.fromarray(out)


def _surround(dark):
    """The cells of the coarse grid around the sheet: those without paper near them (``dark``) that are
    joined to the grid's edge through such cells (a large dark area inside the drawing is not), grown by
    ``SURROUND_REACH`` cells."""
    import numpy as np

    def grown(mask):
        out = mask.copy()
        out[1:] |= mask[:-1]
        out[:-1] |= mask[1:]
        out[:, 1:] |= mask[:, :-1]
        out[:, :-1] |= mask[:, 1:]
        return out

    reached = np.zeros_like(dark)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = dark[0], dark[-1], dark[:, 0], dark[:, -1]
    while True:  # a flood fill, one ring of cells a step, on a grid of about LIGHT_CELLS² cells: cheap
        step = grown(reached) & dark
        if (step == reached).all():
            break
        reached = step
    edge = np.concatenate([reached[0], reached[-1], reached[1:-1, 0], reached[1:-1, -1]])
    if edge.mean() < SURROUND_EDGE:
        return np.zeros_like(dark)
    for _ in range(SURROUND_REACH):
        reached = grown(reached)
    return reached
