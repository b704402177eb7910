"""Turning an uploaded file into the image a search uses, safely.

The format is sniffed from the first bytes, never taken from the file name or the client's
content type, and the request's byte and pixel limits are checked here; the decoding itself is
``figsearch.imaging``'s, the same as ingest's (pixel count checked from the header before anything
is decoded, PDF pages rendered by the one policy under the one pdfium lock), so an uploaded file is
the same pixels as that file ingested.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from figsearch import imaging
from figsearch.errors import ImageTooLarge, InputError
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


@dataclass(frozen=True)
class Limits:
    #: largest accepted request body (an upload plus its form fields), in bytes
    max_upload_bytes: int = 20 * 1024 * 1024
    #: largest image (or PDF page, or image inside a PDF page) decoded, in pixels
    max_pixels: int = 60_000_000


def sniff(data: bytes) -> str:
    """'png', 'jpeg', 'tiff' or 'pdf', from the content; UnsupportedMediaType otherwise."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    # the PDF header may follow some junk, within the first 1024 bytes (PDF 1.7, 7.5.2)
    if imaging.is_pdf(data):
        return "pdf"
    for magic, name in _REFUSED:
        if data.startswith(magic):
            raise UnsupportedMediaType(f"uploaded file is a {name} file; send PNG, JPEG, TIFF or a PDF")
    if not data:
        raise InputError("uploaded file is empty")
    raise UnsupportedMediaType("uploaded file is not a PNG, JPEG, TIFF or PDF (its first bytes match none of them)")


def size_text(n: int) -> str:
    """A byte count as a reader takes it in: "50.0 MiB (52428800 bytes)" ("21037056 bytes" alone was not)."""
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB ({n} bytes)"
    return f"{n / 1024:.1f} KiB ({n} bytes)" if n >= 1024 else f"{n} bytes"


def too_large(what: str, size: str | None, limits: Limits) -> PayloadTooLarge:
    """The 413 of an upload over the limit: its size where known (a file is read to one byte past the
    limit, so its size is not), the limit, and the option that sets it."""
    limit = f"the upload limit of {size_text(limits.max_upload_bytes)} (figsearch serve --max-upload-mb)"
    return PayloadTooLarge(f"{what} is {size}, over {limit}" if size else f"{what} is over {limit}")


def decode_upload(data: bytes, limits: Limits, *, page: int = 1, name: str = "upload") -> Image.Image:
    """The ``page``-th image (1-based) of an uploaded PNG, JPEG, TIFF or PDF, as ingest would store it."""
    return decode_upload_page(data, limits, page=page, name=name)[0]


def decode_upload_page(data: bytes, limits: Limits, *, page: int = 1, name: str = "upload") -> tuple[Image.Image, int]:
    """Like decode_upload, and how many pages the file has."""
    if len(data) > limits.max_upload_bytes:
        raise too_large(name, size_text(len(data)), limits)
    sniff(data)
    try:
        return imaging.load_drawing(data, page=page, name=name, max_pixels=limits.max_pixels)
    except ImageTooLarge as exc:
        if exc.size is None:
            raise PayloadTooLarge(f"{name} has more than {limits.max_pixels} pixels") from None
        width, height = exc.size
        raise PayloadTooLarge(f"{name} is {width}x{height} pixels; the limit is {limits.max_pixels} pixels") from None


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
