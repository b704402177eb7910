"""The one image decoder: every file becomes pixels here, whether it is ingested, searched with or uploaded.

Real drawing sheets are CCITT G4 TIFFs (1-bit, often 2,500 × 3,300 px and more, sometimes
multi-page), PNGs, JPEGs and PDF pages. Ingest stores each image once, ``normalise``-d: 8-bit grey,
its longest side bounded by ``MAX_SIDE``, plus a thumbnail. A query file (CLI or HTTP upload) goes
through the same ``decode`` and the same ``normalise`` (see ``load_drawing``), so a file searched
with is pixel for pixel the figure it would be if it were ingested, and so gets the same vector.

Pillow's own bomb check only warns below 2× its limit, so the pixel count is checked here,
from the header, before any pixel is decoded; a PDF page's embedded images are checked the same
way before pdfium decodes them. pdfium is not thread-safe: every pdfium call in the process runs
under ``PDFIUM_LOCK``.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from figsearch.errors import CorruptInput, ImageTooLarge, InputError, NotFound, UnsupportedFormat
from figsearch.extras import require

#: refuse images above this many pixels (a 600 dpi A3 sheet is ~70 MP); just under Pillow's own
#: hard limit (2 × Image.MAX_IMAGE_PIXELS), which is left as it is for the rest of the process
MAX_PIXELS = 178_000_000
#: longest side of the stored, normalised image: enough for OCR of small reference numerals
#: (a letter sheet at ~220 dpi), while the encoders work far below it. Every collection so far was
#: built with 2400, so changing it would change stored pixels and every published number.
MAX_SIDE = 2400
THUMB_SIDE = 256
#: more pages than this in one TIFF is not a patent sheet
MAX_PAGES = 500
#: The one PDF policy: a page is rendered so that its longest side is ``MAX_SIDE`` (a US letter
#: sheet comes out at ~218 dpi), but never above ``PDF_MAX_DPI`` (tiny pages stay small). Rendering
#: straight to the stored size means normalise() has nothing left to shrink, and a scanned page
#: (one image, nothing else) is decoded as stored instead, which keeps the scan's own pixels.
PDF_MAX_DPI = 600
#: raster formats Pillow may open (sniffed from the content, never from the file name)
FORMATS = ("TIFF", "PNG", "JPEG", "GIF", "BMP", "WEBP")

#: pdfium is not thread-safe (the server decodes uploads in a thread pool): one lock for the process.
#: Re-entrant, so that a reader holding it for a whole document may call render_pdf_page.
PDFIUM_LOCK = threading.RLock()

#: area averaging: antialiases thin lines when shrinking, ~3× faster than Lanczos on sheets
_DOWN = 4  # PIL.Image.Resampling.BOX, without importing Pillow here
_ORIENTATION = 0x0112  # the EXIF/TIFF Orientation tag


@dataclass
class Normalised:
    image: object  # PIL.Image, mode "L"
    thumbnail: object
    original_size: tuple[int, int]


def _pil():
    from PIL import Image

    return Image


def check_size(size: tuple[int, int], source: str, max_pixels: int = MAX_PIXELS) -> None:
    """ImageTooLarge when ``size`` holds more than ``max_pixels``; CorruptInput when it holds none."""
    width, height = size
    if width <= 0 or height <= 0:
        raise CorruptInput(f"{source}: image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{source}: image of {width}×{height} pixels ({width * height / 1e6:.0f} MP) exceeds the "
            f"{max_pixels / 1e6:.0f} MP limit; refused as a possible decompression bomb",
            size=(width, height),
            limit=max_pixels,
        )


def is_pdf(head: bytes) -> bool:
    """PDF by content: the header may follow some junk within the first 1024 bytes (PDF 1.7, 7.5.2)."""
    return b"%PDF-" in head[:1024]


# -- raster files ---------------------------------------------------------------------------------


def open_pages(
    path: Path | None = None,
    data: bytes | None = None,
    *,
    source: str,
    only: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Iterator[tuple[int, int, object]]:
    """Yield (1-based page, page count, decoded PIL image) per page of a raster file.

    ``only`` decodes that one page (InputError when the file has fewer). Pages are decoded one at a
    time into the same image object: use each before asking for the next. EXIF/TIFF orientation is
    applied. Raises CorruptInput (ImageTooLarge for bombs) or UnsupportedFormat on bad files.
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
            raise ImageTooLarge(f"{source}: image{size} exceeds the {max_pixels / 1e6:.0f} MP limit; refused as a "
                                "possible decompression bomb", size=None, limit=max_pixels) from None
        except UnidentifiedImageError:
            handle.seek(0)
            known = _format_from_magic(handle.read(16))
            if known:
                raise CorruptInput(f"{source}: corrupt or truncated {known} file (its header cannot be read)") from None
            raise UnsupportedFormat(f"{source}: not an image figsearch can read (TIFF, PNG, JPEG, GIF, BMP, WebP, "
                                    "or a PDF)") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages = getattr(image, "n_frames", 1) or 1  # walks every page's header: may meet the damage
        if pages > MAX_PAGES:
            raise CorruptInput(f"{source}: {pages} pages in one image file; refused (limit {MAX_PAGES})")
        if only is not None and not 1 <= only <= pages:
            raise InputError(f"{source} has {pages} page(s); page {only} was asked for")
        for index in range(pages) if only is None else (only - 1,):
            where = source if pages == 1 else f"{source} page {index + 1}"
            try:
                if index:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        image.seek(index)
                check_size(image.size, where, max_pixels)
                if image.format == "JPEG":
                    # decode JPEGs straight at a reduced scale when they are far bigger than needed
                    image.draft("L", (MAX_SIDE, MAX_SIDE))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    image.load()
                    page = _upright(image)
            except CorruptInput:
                raise
            except (*_DECODE_ERRORS, MemoryError) as exc:
                raise CorruptInput(f"{where}: cannot decode image ({_why(exc)})") from None
            yield index + 1, pages, page
    except _DECODE_ERRORS as exc:
        raise CorruptInput(f"{source}: cannot decode image ({_why(exc)})") from None
    finally:
        handle.close()


def _upright(image):
    """The image as it is meant to be seen: a phone photo's (or a TIFF's) orientation tag applied.

    Only a tag other than 1 (upright) costs a copy; patent TIFFs carry 1 or nothing, so the sheets
    already in collections decode exactly as before.
    """
    orientation = image.getexif().get(_ORIENTATION, 1)
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return image
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)


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


# -- PDF pages ------------------------------------------------------------------------------------


def render_pdf_page(pdf, index: int, source: str, max_pixels: int = MAX_PIXELS):
    """Page ``index`` (0-based) of an open pypdfium2 document as a PIL image, by the one PDF policy.

    The caller holds ``PDFIUM_LOCK`` (for the document's whole life: opening and closing are pdfium
    calls too).
    """
    page = pdf[index]
    where = f"{source} page {index + 1}"
    try:
        scanned = _scanned_image(page, where, max_pixels)
        if scanned is not None:
            return scanned
        width, height = page.get_size()
        if width <= 0 or height <= 0:
            raise CorruptInput(f"{where}: page has no size")
        scale = min(MAX_SIDE / max(width, height), PDF_MAX_DPI / 72)
        check_size((int(width * scale), int(height * scale)), where, max_pixels)
        # pdfium decodes an embedded image whole before scaling it: a 1 MB PDF can hold a 400 MP image
        raw = require("pypdfium2.raw")
        for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE]):
            check_size(tuple(obj.get_px_size()), f"{where}: embedded image", max_pixels)
        bitmap = page.render(scale=scale, grayscale=True)
        image = bitmap.to_pil().convert("L")
        bitmap.close()
        return image
    finally:
        page.close()


def _scanned_image(page, where: str, max_pixels: int):
    """The page's one image, decoded as stored, when the page is a scan and nothing else.

    USPTO and most archive PDFs are one scanned image per page (plus invisible OCR text);
    decoding that image is ~4× faster than rendering the page and keeps its resolution.
    Any visible text, vector path, rotation or partial cover sends the page to the renderer.
    """
    raw = require("pypdfium2.raw")
    images = []
    for obj in page.get_objects():
        if obj.type == raw.FPDF_PAGEOBJ_IMAGE:
            images.append(obj)
        elif obj.type != raw.FPDF_PAGEOBJ_TEXT or raw.FPDFTextObj_GetTextRenderMode(obj.raw) != 3:
            return None  # something visible besides the scan
        if len(images) > 1:
            return None
    if len(images) != 1 or page.get_rotation() != 0:
        return None
    image = images[0]
    matrix = image.get_matrix()
    if matrix.b or matrix.c or matrix.a <= 0 or matrix.d <= 0:
        return None
    left, bottom, right, top = image.get_bounds()
    width, height = page.get_size()
    if (right - left) * (top - bottom) < 0.8 * width * height:
        return None
    check_size(tuple(image.get_px_size()), where, max_pixels)
    try:
        bitmap = image.get_bitmap(render=False)
        pil = bitmap.to_pil()
    except Exception:  # an encoding pdfium cannot hand out raw: render instead
        return None
    return pil


_PDF_OPEN_ERRORS = {2: "cannot read the file", 3: "not a valid PDF (damaged or truncated)",
                    4: "PDF is password-protected", 5: "PDF uses an unsupported security handler"}


def pdf_open_error(exc) -> str:
    """Why pdfium could not open a document, in words."""
    code = getattr(exc, "err_code", None)
    return f"cannot open PDF: {_PDF_OPEN_ERRORS.get(code, exc)}"


def _pdf_page(data: bytes, page: int, source: str, max_pixels: int) -> tuple[object, int]:
    pdfium = require("pypdfium2", "reading PDF files")
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise CorruptInput(f"{source}: {pdf_open_error(exc)}") from None
        try:
            pages = len(document)
            if pages == 0:
                raise CorruptInput(f"{source}: PDF has no pages")
            if not 1 <= page <= pages:
                raise InputError(f"{source} has {pages} page(s); page {page} was asked for")
            image = render_pdf_page(document, page - 1, source, max_pixels)
            # the pixels must outlive the document
            return image.copy(), pages
        except pdfium.PdfiumError as exc:
            raise CorruptInput(f"{source} page {page}: damaged PDF ({exc})") from None
        finally:
            document.close()


# -- one file, one page -----------------------------------------------------------------------------


def decode(source: object, *, page: int = 1, name: str | None = None,
           max_pixels: int = MAX_PIXELS) -> tuple[object, int]:
    """(page ``page`` of a file as decoded, its page count): a path, the file's bytes, or a PIL image.

    TIFF/PNG/JPEG/... and PDF are told apart by their content. A PDF page is rendered exactly as
    ingest renders it; a raster page is decoded exactly as ingest decodes it. The image is not yet
    grey nor bounded: ``load_drawing`` does both, as ingest does.
    """
    Image = _pil()
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise NotFound(f"{name}: no such file")
        source = path.read_bytes()
    name = name or "image"
    if isinstance(source, Image.Image):
        if page != 1:
            raise InputError(f"{name} is one image; page {page} was asked for")
        return source, 1
    if not isinstance(source, (bytes, bytearray, memoryview)):
        raise InputError(f"{name} must be an image or the bytes of an image file, not {type(source).__name__}")
    data = bytes(source)
    if not data:
        raise CorruptInput(f"{name}: empty file (0 bytes)")
    if is_pdf(data):
        return _pdf_page(data, page, name, max_pixels)
    for _, count, image in open_pages(data=data, source=name, only=page, max_pixels=max_pixels):
        return image, count
    raise CorruptInput(f"{name}: no image in the file")  # unreachable: open_pages yields the page or raises


def load_drawing(source: object, *, page: int = 1, name: str | None = None,
                 max_pixels: int = MAX_PIXELS) -> tuple[object, int]:
    """(the page as ingest would store it: grey, bounded by MAX_SIDE; the file's page count).

    What every query path (CLI, Python, HTTP) uses, so a query file and the same file ingested
    are the same pixels.
    """
    image, pages = decode(source, page=page, name=name, max_pixels=max_pixels)
    return bound(to_grey(image)), pages


# -- normalisation ----------------------------------------------------------------------------------


def to_grey(image):
    """8-bit grey; transparent areas become paper (white), not black; 16-bit and float greys scaled."""
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


def bound(grey, max_side: int = MAX_SIDE):
    """``grey`` with its longest side at most ``max_side`` (the image itself when it already is)."""
    if max(grey.size) > max_side:
        # an integer box reduction first (fast, and kind to thin 1-bit lines), then the exact size
        factor = max(grey.size) // max_side
        if factor >= 2:
            grey = grey.reduce(factor)
        if max(grey.size) > max_side:
            grey = thumbnail_of(grey, max_side, _DOWN)
    return grey


def thumbnail_of(image, side: int, resample=None, reducing_gap: float | None = 2.0):
    """``image.copy()`` after ``.thumbnail((side, side), resample, reducing_gap)``, pixel for pixel (Pillow's
    own sizing and resize), without copying the full-size pixels first: ``thumbnail`` replaces the pixels
    of the image it is called on with the resized ones, so it runs on a new image object that shares
    ``image``'s pixels (``Image._new``), and ``image`` is left as it was. A full sheet's copy cost about
    0.6 CPU ms, a quarter of making its thumbnail (docs/performance.md, "Stop 23")."""
    Image = _pil()
    shared = image._new(image.im)  # no pixels copied; thumbnail() below swaps in the resized ones
    shared.thumbnail((side, side), Image.Resampling.BICUBIC if resample is None else resample, reducing_gap=reducing_gap)
    return image.copy() if shared.im is image.im else shared  # small enough already: a copy, as before


def normalise(image, *, max_side: int = MAX_SIDE, thumb_side: int = THUMB_SIDE) -> Normalised:
    """Grey, longest side at most ``max_side``, its tone normalised (``figsearch.tone``: a photographed
    drawing's grey paper to white; an image whose paper is white, every scan here, stays the same object),
    and a thumbnail of ``thumb_side``. Query images get the same (``search.inputs.load_query_image``)."""
    from figsearch.tone import normalise_tone

    original = image.size
    grey = normalise_tone(bound(to_grey(image), max_side))
    return Normalised(grey, thumbnail_of(grey, thumb_side, _DOWN), original)


# -- pixels as an array ---------------------------------------------------------------------------------


def grey_pixels(image):
    """The pixels of an 8-bit grey image ("L") as a read-only (height, width) uint8 NumPy array, equal to
    ``np.asarray(image)``, without its copy where Pillow hands them out: ``np.asarray`` goes through
    ``Image.tobytes``, which copies the whole image (0.6-2 CPU ms a stored grant sheet on the 2-core machine), while
    Pillow 11.2 and later export an image's pixels without a copy through the Arrow C data interface
    (``Image.__arrow_c_array__``); the array then shares the image's memory, which that export keeps alive
    as long as the array lives. Any other mode, an older Pillow, or an export that is not one plain
    buffer of width × height bytes: ``np.asarray``'s copy (docs/performance.md, "Stop 29")."""
    import numpy as np

    if image.mode == "L":
        try:
            shared = _arrow_view(image)
        except Exception:  # noqa: BLE001 - no export of this image (an older Pillow, pixels in several blocks)
            shared = None
        if shared is not None:
            return shared
    pixels = np.asarray(image)
    pixels.flags.writeable = False  # the same promise either way: callers read, never write
    return pixels


class _ArrowArray:  # the Arrow C data interface's ArrowArray struct (a stable ABI), built on first use
    struct = None


def _arrow_view(image):
    """``image``'s pixels through ``__arrow_c_array__`` (see ``grey_pixels``), or None when the export is not
    a single uint8 buffer of width × height values without nulls."""
    import ctypes

    import numpy as np

    export = getattr(image, "__arrow_c_array__", None)
    if export is None:
        return None
    if _ArrowArray.struct is None:
        class Struct(ctypes.Structure):
            _fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
                        ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64),
                        ("buffers", ctypes.POINTER(ctypes.c_void_p)), ("children", ctypes.c_void_p),
                        ("dictionary", ctypes.c_void_p), ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p)]

        _ArrowArray.struct = Struct
    schema, array = export()
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    fmt = ctypes.c_char_p.from_address(pointer(schema, b"arrow_schema")).value  # the schema's first field: format
    exported = _ArrowArray.struct.from_address(pointer(array, b"arrow_array"))
    width, height = image.size
    if (fmt != b"C" or exported.length != width * height or exported.null_count != 0 or exported.n_buffers != 2
            or exported.n_children != 0 or exported.buffers[0] or not exported.buffers[1]):
        return None
    buffer = (ctypes.c_uint8 * (width * height)).from_address(exported.buffers[1] + exported.offset)
    buffer.export = array  # the capsule releases the export (and Pillow's hold on the pixels) when the array goes
    pixels = np.frombuffer(buffer, np.uint8).reshape(height, width)
    pixels.flags.writeable = False
    return pixels


# -- stored PNGs ------------------------------------------------------------------------------------

#: zlib level of the stored drawings: level 1 is twice as fast as the default and barely larger here
PNG_LEVEL = 1


def encode_png(image, level: int = PNG_LEVEL) -> bytes:
    """``image`` as PNG bytes that decode to exactly its pixels.

    An 8-bit grey image (every stored drawing, cut figure and thumbnail) is written here with no row
    filter (filter type 0) and one zlib stream: on drawing sheets, mostly white paper with thin lines,
    Pillow's adaptive choice among the five filters for every row cost about as much as zlib itself
    and bought nothing (the unfiltered stream compressed smaller), and the unfiltered file decodes in
    half the time. Any other image, or one whose transparency Pillow would keep, goes through Pillow.

    A grey image whose pixels are all 0 or 255 (a bilevel scan stored at its own size: most design
    grants' sheets) is written as a 1-bit grey PNG: an eighth of the bytes to deflate, about 2 instead of
    5.5 CPU ms for a grant sheet, and half the file. Pillow opens such a file in mode "1";
    ``load_stored`` hands it on as the same "L" pixels (docs/performance.md, "Stop 26").
    """
    if image.mode != "L" or "transparency" in image.info:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=level)
        return buffer.getvalue()
    import zlib

    import numpy as np

    width, height = image.size
    pixels = grey_pixels(image)
    if _bilevel(pixels):
        packed = np.packbits(pixels, axis=1)  # 255 -> bit 1 (white), 0 -> bit 0, leftmost pixel first
        depth = 1
    else:
        packed, depth = pixels, 8
    rows = np.empty((height, packed.shape[1] + 1), np.uint8)
    rows[:, 0] = 0  # each row's filter type: none
    rows[:, 1:] = packed
    compressor = zlib.compressobj(level)
    idat = compressor.compress(rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)  # grey, deflate, no interlace
    return b"".join((b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", idat),
                     _png_chunk(b"IEND", b"")))


def _bilevel(pixels, band: int = 256) -> bool:
    """Whether every value of the uint8 array ``pixels`` is 0 or 255. Checked in bands of rows, so that a
    grey image (most have a grey pixel in their first band) costs one band: (v + 1) & 0xFE is 0 for 0 and
    255 only."""
    import numpy as np

    for start in range(0, len(pixels), band):
        rows = pixels[start:start + band] + np.uint8(1)
        rows &= np.uint8(0xFE)
        if rows.any():
            return False
    return True


def load_stored(source):
    """A stored PNG (a path or a file object), decoded, as it was stored: a 1-bit file (a bilevel
    drawing, ``encode_png``) becomes its "L" image again (0 and 255), any other mode is left as it is.
    Every reader of the collection's images decodes them here, so none sees a mode-"1" image."""
    Image = _pil()
    with Image.open(source) as image:
        image.load()  # the pixels are in memory: leaving the block closes the file only (no copy needed)
        return image.convert("L") if image.mode == "1" else image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def stored_pixels_equal(data: bytes, image) -> bool:
    """Whether the PNG ``data`` (a file stored before) decodes to exactly ``image``'s pixels; False
    when it cannot be decoded."""
    Image = _pil()
    try:
        with Image.open(io.BytesIO(data), formats=("PNG",)) as old:
            if old.size != image.size or old.mode != image.mode and (old.mode, image.mode) != ("1", "L"):
                return False
            old.load()
            return (old.convert("L") if old.mode == "1" else old).tobytes() == image.tobytes()
    except Exception:  # noqa: BLE001 - a damaged or foreign file is simply not the same image
        return False
