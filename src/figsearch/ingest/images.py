"""Decoding and normalising patent images, with guards against hostile files.

Real drawing sheets are CCITT G4 TIFFs (1-bit, often 2,500 × 3,300 px and more, sometimes
multi-page), PNGs and JPEGs. Every image is stored once, normalised: 8-bit grey, its longest
side bounded by ``MAX_SIDE`` (enough for OCR of small reference numerals), plus a thumbnail.

Pillow's own bomb check only warns below 2× its limit, so the pixel count is checked here,
from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from figsearch.errors import CorruptInput, UnsupportedFormat

log = logging.getLogger(__name__)

#: refuse images above this many pixels (a 600 dpi A3 sheet is ~70 MP); just under Pillow's own
#: hard limit (2 × Image.MAX_IMAGE_PIXELS), which is left as it is for the rest of the process
MAX_PIXELS = 178_000_000
#: longest side of the stored, normalised image
MAX_SIDE = 2400
THUMB_SIDE = 256
#: more pages than this in one TIFF is not a patent sheet
MAX_PAGES = 500
FORMATS = ("TIFF", "PNG", "JPEG", "GIF", "BMP", "WEBP")


#: area averaging: antialiases thin lines when shrinking, ~3× faster than Lanczos on sheets
_DOWN = 4  # PIL.Image.Resampling.BOX, without importing Pillow here


@dataclass
class Normalised:
    image: object  # PIL.Image, mode "L"
    thumbnail: object
    original_size: tuple[int, int]


def _pil():
    from PIL import Image

    return Image


def _check_size(size: tuple[int, int], source: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptInput(f"{source}: image has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise CorruptInput(
            f"{source}: image of {width}×{height} pixels ({width * height / 1e6:.0f} MP) exceeds the "
            f"{MAX_PIXELS / 1e6:.0f} MP limit; refused as a possible decompression bomb"
        )


def open_pages(
    path: Path | None = None, data: bytes | None = None, *, source: str
) -> Iterator[tuple[int, int, object]]:
    """Yield (1-based page, page count, decoded PIL image) per page; raises CorruptInput on bad files.

    Pages are decoded one at a time into the same image object: use each before asking for the next.
    """
    Image = _pil()
    from PIL import UnidentifiedImageError

    if data is None and path is not None and path.stat().st_size == 0:
        raise CorruptInput(f"{source}: empty file (0 bytes)")
    if data is not None and not data:
        raise CorruptInput(f"{source}: empty image data")
    handle = io.BytesIO(data) if data is not None else open(path, "rb")
    try:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow warns about damaged metadata; we report the damage
                image = Image.open(handle, formats=FORMATS)
        except Image.DecompressionBombError as exc:
            pixels = re.search(r"\((\d+) pixels\)", str(exc))
            size = f" of {int(pixels.group(1)) / 1e6:.0f} MP" if pixels else ""
            raise CorruptInput(f"{source}: image{size} exceeds the {MAX_PIXELS / 1e6:.0f} MP limit; refused as a "
                               "possible decompression bomb") from None
        except UnidentifiedImageError:
            handle.seek(0)
            known = _format_from_magic(handle.read(16))
            if known:
                raise CorruptInput(f"{source}: corrupt or truncated {known} file (its header cannot be read)") from None
            raise UnsupportedFormat(f"{source}: not an image Pillow can read (TIFF, PNG, JPEG, GIF, BMP, WebP)") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages = getattr(image, "n_frames", 1) or 1  # walks every page's header: may meet the damage
        if pages > MAX_PAGES:
            raise CorruptInput(f"{source}: {pages} pages in one image file; refused (limit {MAX_PAGES})")
        for index in range(pages):
            try:
                if index:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        image.seek(index)
                _check_size(image.size, source if pages == 1 else f"{source} page {index + 1}")
                if image.format == "JPEG":
                    # decode JPEGs straight at a reduced scale when they are far bigger than needed
                    image.draft("L", (MAX_SIDE, MAX_SIDE))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    image.load()
                yield index + 1, pages, image
            except CorruptInput:
                raise
            except (*_DECODE_ERRORS, MemoryError) as exc:
                where = source if pages == 1 else f"{source} page {index + 1}"
                raise CorruptInput(f"{where}: cannot decode image ({_why(exc)})") from None
    except _DECODE_ERRORS as exc:
        raise CorruptInput(f"{source}: cannot decode image ({_why(exc)})") from None
    finally:
        handle.close()


#: what Pillow raises on malformed files (found by fuzzing: a damaged second TIFF page gives TypeError)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, struct.error,
                  ZeroDivisionError)


def _format_from_magic(head: bytes) -> str | None:
    for magic, name in ((b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"),
                        (b"GIF8", "GIF"), (b"BM", "BMP")):
        if head.startswith(magic):
            return name
    return None


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated or incomplete file: {text}"
    return text


def to_grey(image):
    """8-bit grey; transparent areas become paper (white), not black."""
    Image = _pil()
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("L")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scale into 0..255 rather than clip
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.full_like(array, 255.0)
        return Image.fromarray(scaled.astype("uint8"), "L")
    return image.convert("L")


def normalise(image, *, max_side: int = MAX_SIDE, thumb_side: int = THUMB_SIDE) -> Normalised:
    """Grey, longest side at most ``max_side``, and a thumbnail of ``thumb_side``."""
    original = image.size
    grey = to_grey(image)
    if max(grey.size) > max_side:
        # an integer box reduction first (fast, and kind to thin 1-bit lines), then the exact size
        factor = max(grey.size) // max_side
        if factor >= 2:
            grey = grey.reduce(factor)
        if max(grey.size) > max_side:
            grey = grey.copy()
            grey.thumbnail((max_side, max_side), _DOWN, reducing_gap=2.0)
    thumb = grey.copy()
    thumb.thumbnail((thumb_side, thumb_side), _DOWN, reducing_gap=2.0)
    return Normalised(grey, thumb, original)
