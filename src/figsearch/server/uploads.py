"""Turning an uploaded file into a PIL image, safely.

The format is sniffed from the first bytes, never taken from the file name or the
client's content type; the pixel count is checked from the header before anything is
decoded (no decompression bombs); a PDF page is rendered at a scale that keeps it
under the same pixel limit.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from figsearch.embed.preprocess import to_grey
from figsearch.errors import CorruptInput, InputError
from figsearch.extras import require
from figsearch.server.errors import PayloadTooLarge, UnsupportedMediaType

#: what the API reads, by the magic bytes a file starts with
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
#: other formats we recognise only to refuse them by name
_REFUSED = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"RIFF", "RIFF/WebP"), (b"PK\x03\x04", "ZIP"))

#: a crop smaller than this (in pixels, either side) holds too little drawing to search with
MIN_CROP_SIDE = 8

#: pdfium is not thread-safe; requests run in a thread pool
_PDF_LOCK = threading.Lock()


@dataclass(frozen=True)
class Limits:
    #: largest accepted request body (an upload plus its form fields), in bytes
    max_upload_bytes: int = 20 * 1024 * 1024
    #: largest image (or rendered PDF page) decoded, in pixels
    max_pixels: int = 60_000_000
    #: a decoded query image is scaled down to this longest side before it reaches the service
    max_side: int = 3000


def sniff(data: bytes) -> str:
    """'png', 'jpeg', 'tiff' or 'pdf', from the content; UnsupportedMediaType otherwise."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    # the PDF header may follow some junk, within the first 1024 bytes (PDF 1.7, 7.5.2)
    if b"%PDF-" in data[:1024]:
        return "pdf"
    for magic, name in _REFUSED:
        if data.startswith(magic):
            raise UnsupportedMediaType(f"uploaded file is a {name} file; send PNG, JPEG, TIFF or a PDF")
    if not data:
        raise InputError("uploaded file is empty")
    raise UnsupportedMediaType("uploaded file is not a PNG, JPEG, TIFF or PDF (its first bytes match none of them)")


def decode_upload(data: bytes, limits: Limits, *, page: int = 1, name: str = "upload") -> Image.Image:
    """The ``page``-th image (1-based) of an uploaded PNG, JPEG, TIFF or PDF, grey, bounded in size."""
    return decode_upload_page(data, limits, page=page, name=name)[0]


def decode_upload_page(data: bytes, limits: Limits, *, page: int = 1, name: str = "upload") -> tuple[Image.Image, int]:
    """Like decode_upload, and how many pages the file has."""
    if len(data) > limits.max_upload_bytes:
        raise PayloadTooLarge(f"{name} is {len(data)} bytes; the limit is {limits.max_upload_bytes}")
    kind = sniff(data)
    if kind == "pdf":
        image, pages = _render_pdf_page(data, page, limits, name)
    else:
        image, pages = _decode_raster(data, kind, page, limits, name)
    image = to_grey(image)
    if max(image.size) > limits.max_side:
        image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.BOX)
    return image, pages


def _decode_raster(data: bytes, kind: str, page: int, limits: Limits, name: str) -> tuple[Image.Image, int]:
    try:
        with warnings.catch_warnings():
            # our own limit below is the check; Pillow's bomb warning would only add noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind.upper()])
            frames = getattr(image, "n_frames", 1)
            if page < 1 or page > frames:
                raise InputError(f"{name} has {frames} page(s); page {page} was asked for")
            if page > 1:
                image.seek(page - 1)
            width, height = image.size
            if width * height > limits.max_pixels:
                raise PayloadTooLarge(
                    f"{name} is {width}x{height} pixels; the limit is {limits.max_pixels} pixels"
                )
            image.load()
            # a phone photo's EXIF orientation is what the user saw
            return (ImageOps.exif_transpose(image) if kind == "jpeg" else image), frames
    except (InputError, PayloadTooLarge):
        raise
    except Image.DecompressionBombError as exc:
        # Pillow refuses at open what is far over its own limit, before ours can look
        raise PayloadTooLarge(f"{name} has more than {limits.max_pixels} pixels ({exc})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptInput(f"{name} looks like {kind.upper()} but cannot be decoded: {exc}") from exc


def _render_pdf_page(data: bytes, page: int, limits: Limits, name: str) -> tuple[Image.Image, int]:
    pdfium = require("pypdfium2", "reading PDF uploads")
    with _PDF_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise CorruptInput(f"{name} looks like a PDF but cannot be opened: {exc}") from exc
        try:
            pages = len(document)
            if page < 1 or page > pages:
                raise InputError(f"{name} has {pages} page(s); page {page} was asked for")
            pdf_page = document[page - 1]
            width_pt, height_pt = pdf_page.get_size()
            if width_pt <= 0 or height_pt <= 0:
                raise CorruptInput(f"{name}: page {page} has no area")
            # 200 dpi suits drawings; scale down further when that would exceed the limits
            scale = 200 / 72
            scale = min(scale, limits.max_side / max(width_pt, height_pt))
            scale = min(scale, (limits.max_pixels / (width_pt * height_pt)) ** 0.5)
            bitmap = pdf_page.render(scale=scale, grayscale=True)
            return bitmap.to_pil().copy(), pages
        except pdfium.PdfiumError as exc:
            raise CorruptInput(f"{name}: page {page} cannot be rendered: {exc}") from exc
        finally:
            document.close()


def parse_crop(text: str | None) -> tuple[float, float, float, float] | None:
    """``"x0,y0,x1,y1"`` as fractions (0..1) of the image's width and height."""
    if text is None or not text.strip():
        return None
    parts = text.split(",")
    try:
        box = tuple(float(p) for p in parts)
    except ValueError:
        box = ()
    if len(box) != 4:
        raise InputError(f"crop {text!r}: expected four numbers x0,y0,x1,y1 (fractions of width and height)")
    x0, y0, x1, y1 = box
    if not all(0.0 <= v <= 1.0 for v in box) or x1 <= x0 or y1 <= y0:
        raise InputError(f"crop {text!r}: expected 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return box  # type: ignore[return-value]


def apply_crop(image: Image.Image, crop: tuple[float, float, float, float] | None) -> Image.Image:
    if crop is None:
        return image
    w, h = image.size
    x0, y0, x1, y1 = crop
    box = (int(x0 * w), int(y0 * h), int(round(x1 * w)), int(round(y1 * h)))
    if box[2] - box[0] < MIN_CROP_SIDE or box[3] - box[1] < MIN_CROP_SIDE:
        raise InputError(
            f"crop {crop} of a {w}x{h} image is {box[2] - box[0]}x{box[3] - box[1]} pixels; "
            f"at least {MIN_CROP_SIDE}x{MIN_CROP_SIDE} is needed"
        )
    return image.crop(box)
