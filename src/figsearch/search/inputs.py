"""Query images: a PIL image, or the bytes of a TIFF, PNG, JPEG or PDF (first page), any size."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from figsearch.embed.preprocess import to_grey
from figsearch.errors import CorruptInput, InputError, NotFound, UnsupportedFormat
from figsearch.extras import require

#: query images are shrunk to this longer side first: the encoders need no more, and
#: decoding stays bounded (a 600 dpi sheet is ~5000 × 6600)
MAX_QUERY_SIDE = 3000
PDF_DPI = 150


_MAGIC = {b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG"}


def _known_kind(data: bytes) -> str | None:
    return next((kind for magic, kind in _MAGIC.items() if data.startswith(magic)), None)


def _render_pdf(data: bytes, name: str) -> Image.Image:
    pdfium = require("pypdfium2", "PDF query images")
    try:
        document = pdfium.PdfDocument(data)
        if len(document) == 0:
            raise CorruptInput(f"query PDF {name} has no pages")
        # a PDF query is one drawing: its first page (split multi-page PDFs before asking)
        return document[0].render(scale=PDF_DPI / 72, grayscale=True).to_pil()
    except pdfium.PdfiumError as exc:
        raise CorruptInput(f"query PDF {name} cannot be read: {exc}") from exc


def load_query_image(image: object, name: str = "query image") -> Image.Image:
    """A grey PIL image from whatever the caller gave; CorruptInput/UnsupportedFormat otherwise."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise NotFound(f"query image {path} does not exist")
        name, image = str(path), path.read_bytes()
    if isinstance(image, Image.Image):
        picture = image
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise CorruptInput(f"{name} is empty (0 bytes)")
        if data[:5] == b"%PDF-":
            picture = _render_pdf(data, name)
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # PIL's notes on damaged metadata
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    picture = Image.open(io.BytesIO(data))
                    picture.load()  # the first frame of a multi-page TIFF
            except UnidentifiedImageError as exc:
                kind = _known_kind(data)
                if kind:
                    raise CorruptInput(f"{name} starts like a {kind} file but cannot be decoded (truncated or damaged)") from exc
                raise UnsupportedFormat(f"{name} is not an image figsearch reads (TIFF, PNG, JPEG or PDF)") from exc
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise CorruptInput(f"{name} is too large to decode safely: {exc}") from exc
            except (OSError, SyntaxError, ValueError) as exc:  # truncated or malformed data
                raise CorruptInput(f"{name} cannot be decoded ({type(exc).__name__}: {exc})") from exc
    else:
        raise InputError(f"{name} must be an image or the bytes of an image file, not {type(image).__name__}")
    if picture.width < 8 or picture.height < 8:
        raise InputError(f"{name} is {picture.width}×{picture.height} pixels; a drawing needs at least 8×8")
    grey = to_grey(picture)
    if max(grey.size) > MAX_QUERY_SIDE:
        grey = grey.copy() if grey is picture else grey
        grey.thumbnail((MAX_QUERY_SIDE, MAX_QUERY_SIDE), Image.Resampling.BOX)
    return grey
