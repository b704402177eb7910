"""The one image decoder (figsearch.imaging), and the promise it exists for: a file ingested, the same
file as a CLI/Python query and the same file uploaded over HTTP are the same pixels and the same vector."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from ingest_helpers import drawing
from PIL import Image, ImageOps

from figsearch import imaging
from figsearch.errors import CorruptInput, ImageTooLarge, InputError, NotFound, UnsupportedFormat
from figsearch.search.inputs import load_query_image
from figsearch.server.uploads import Limits, decode_upload, decode_upload_page

# -- files built here ------------------------------------------------------------------------------


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def g4_tiff(size=(1200, 1700), pages: int = 1) -> bytes:
    frames = [drawing(size, f"FIG. {i + 1}") for i in range(pages)]
    return _save(frames[0], "TIFF", compression="group4", save_all=pages > 1, append_images=frames[1:])


def grey_tiff(size=(900, 1300)) -> bytes:
    return _save(drawing(size, "FIG. 2", mode="L"), "TIFF")


def sixteen_bit() -> Image.Image:
    """A 16-bit grey drawing whose levels use only part of the range (as scanners write them)."""
    pixels = np.asarray(drawing((700, 1000), "FIG. 3", mode="L"), dtype=np.uint16) * 40 + 3000
    return Image.fromarray(pixels.astype(np.uint16))


def sixteen_bit_tiff() -> bytes:
    return _save(sixteen_bit(), "TIFF")


def big_png(size=(3000, 4200)) -> bytes:
    """RGB and larger than the stored size: normalisation has to convert and shrink it."""
    return _save(drawing(size, "FIG. 4", mode="L").convert("RGB"), "PNG")


def rotated_jpeg(orientation: int = 6) -> tuple[bytes, Image.Image]:
    """A JPEG stored sideways with an EXIF orientation tag, and the image it is stored as."""
    stored = drawing((1100, 800), "FIG. 5", mode="L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=90, exif=exif), stored


def vector_pdf(pages=((612, 792),)) -> bytes:
    """A PDF whose pages are vector drawings (boxes and a diagonal), one size per page."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for index, (width, height) in enumerate(pages):
        page_id, content_id = 3 + 2 * index, 4 + 2 * index
        kids.append(f"{page_id} 0 R")
        stream = (f"{2 + index} w {width * 0.1:.1f} {height * 0.1:.1f} {width * 0.8:.1f} {height * 0.5:.1f} re S "
                  f"{width * 0.2:.1f} {height * 0.7:.1f} m {width * 0.8:.1f} {height * 0.9:.1f} l S "
                  f"{width * 0.3:.1f} {height * 0.2:.1f} {width * 0.1 * (index + 1):.1f} {height * 0.1:.1f} re f")
        data = stream.encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] /Contents {content_id} 0 R "
                       f"/Resources << >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def scanned_pdf() -> bytes:
    """A PDF of scanned sheets (one image per page, as USPTO's are), written by Pillow."""
    sheets = [drawing((850, 1100), f"FIG. {i}", mode="L") for i in (1, 2)]
    return _save(sheets[0], "PDF", resolution=100, save_all=True, append_images=sheets[1:])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge image in a few bytes: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


# -- formats and bit depths ------------------------------------------------------------------------


def test_g4_tiff_single_and_multi_page():
    image, pages = imaging.decode(g4_tiff(), name="sheet.tif")
    assert pages == 1 and image.mode == "1" and image.size == (1200, 1700)
    decoded = [(page, count, image.copy()) for page, count, image in
               imaging.open_pages(data=g4_tiff(pages=3), source="three.tif")]
    assert [(p, c) for p, c, _ in decoded] == [(1, 3), (2, 3), (3, 3)]
    second, count = imaging.decode(g4_tiff(pages=3), page=2, name="three.tif")
    assert count == 3 and pixels(second).tolist() == pixels(decoded[1][2]).tolist()
    assert pixels(decoded[0][2]).tolist() != pixels(decoded[1][2]).tolist()  # pages differ (their labels)


def test_eight_and_sixteen_bit_greys():
    grey, _ = imaging.decode(grey_tiff())
    assert grey.mode == "L"
    deep, _ = imaging.decode(sixteen_bit_tiff())
    assert deep.mode.startswith("I;16")
    drawing_, _ = imaging.load_drawing(sixteen_bit_tiff())
    assert drawing_.mode == "L" and drawing_.getextrema() == (0, 255)  # scaled to the full range, not clipped
    # ink stays ink: the 16-bit file and its 8-bit original are the same drawing
    original = pixels(drawing((700, 1000), "FIG. 3", mode="L")) < 128
    assert ((pixels(drawing_) < 128) == original).all()


def test_png_is_grey_and_bounded():
    image, _ = imaging.load_drawing(big_png())
    assert image.mode == "L" and max(image.size) == imaging.MAX_SIDE
    small, _ = imaging.load_drawing(_save(drawing((300, 200), mode="L"), "PNG"))
    assert small.size == (300, 200)  # never enlarged


@pytest.mark.parametrize("size", [(1700, 2200), (2200, 1700), (257, 3000), (3001, 2999), (200, 100)])
@pytest.mark.parametrize("side, resample", [(256, Image.Resampling.BOX), (2400, Image.Resampling.BOX), (256, None)])
def test_thumbnail_of_is_thumbnail_on_a_copy(size, side, resample):
    """The stored thumbnails and bounded sheets keep Pillow's pixels, and the image they come from is untouched."""
    sheet = drawing(size, "FIG. 1", mode="L")
    before = sheet.tobytes()
    expected = sheet.copy()
    expected.thumbnail((side, side), *([resample] if resample is not None else []), reducing_gap=2.0)
    got = imaging.thumbnail_of(sheet, side, resample)
    assert (got.mode, got.size) == (expected.mode, expected.size) and got.tobytes() == expected.tobytes()
    assert sheet.tobytes() == before and sheet.size == size and got.im is not sheet.im  # never shares the pixels


def test_transparency_becomes_paper_and_16_bit_is_scaled():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert imaging.to_grey(rgba).getextrema() == (255, 255)
    flat = Image.fromarray(np.full((5, 5), 1234, dtype=np.uint16))
    assert imaging.to_grey(flat).getextrema() == (255, 255)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_jpeg_exif_orientation_is_applied(orientation):
    data, stored = rotated_jpeg(orientation)
    image, _ = imaging.decode(data, name="photo.jpg")
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    assert image.size == expected.size
    if orientation in (6, 8):
        assert image.size == (stored.height, stored.width)
    assert pixels(image.convert("L")).tolist() == pixels(expected.convert("L")).tolist()


def test_upright_images_are_not_copied():
    data = _save(drawing((300, 400), mode="L"), "PNG")
    for _, _, image in imaging.open_pages(data=data, source="upright.png"):
        assert imaging._upright(image) is image


def test_pdf_pages_follow_the_one_policy():
    letter = vector_pdf([(612, 792), (72, 36)])
    page, count = imaging.decode(letter, name="doc.pdf")
    assert count == 2 and page.mode == "L"
    assert max(page.size) == imaging.MAX_SIDE  # a letter page is rendered at the stored size
    tiny, _ = imaging.decode(letter, page=2, name="doc.pdf")
    assert tiny.size == (72 * imaging.PDF_MAX_DPI // 72, 36 * imaging.PDF_MAX_DPI // 72)  # capped at 600 dpi
    assert (pixels(page) < 128).any()
    huge, _ = imaging.decode(vector_pdf([(7200, 7200)]), name="huge.pdf")
    assert huge.size == (imaging.MAX_SIDE, imaging.MAX_SIDE)  # a 100-inch page is no bomb


def test_scanned_pdf_pages_keep_the_scan():
    page, count = imaging.decode(scanned_pdf(), page=2, name="scan.pdf")
    assert count == 2 and page.size == (850, 1100)  # the scan's own pixels, not a rendering
    # Pillow stores the sheet as a JPEG inside the PDF: the same drawing, up to compression noise
    difference = np.abs(pixels(page.convert("L")).astype(int) - pixels(drawing((850, 1100), "FIG. 2", mode="L")))
    assert difference.mean() < 2


def test_pdf_decoding_is_safe_across_threads():
    data = vector_pdf([(612, 792)] * 3)
    expected = [pixels(imaging.decode(data, page=p)[0]) for p in (1, 2, 3)]
    results, errors = [], []

    def work(page: int) -> None:
        try:
            for _ in range(3):
                results.append((page, pixels(imaging.decode(data, page=page)[0])))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(1 + i % 3,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 18 and all((image == expected[page - 1]).all() for page, image in results)


# -- clear errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data,kind", [
    (lambda: g4_tiff()[:300], "TIFF"),
    (lambda: big_png()[:2000], None),
    (lambda: rotated_jpeg()[0][:400], None),
    (lambda: b"II*\x00" + bytes(40), "TIFF"),
])
def test_truncated_files_are_corrupt_input_naming_the_file(data, kind):
    with pytest.raises(CorruptInput) as error:
        imaging.load_drawing(data(), name="broken-sheet.x")
    assert "broken-sheet.x" in str(error.value)
    if kind:
        assert kind in str(error.value)


def test_truncated_and_empty_pdfs():
    with pytest.raises(CorruptInput, match="doc.pdf.*(damaged|cannot open)"):
        imaging.decode(vector_pdf()[:60], name="doc.pdf")
    with pytest.raises(CorruptInput, match=r"empty\.tif.*0 bytes"):
        imaging.decode(b"", name="empty.tif")


def test_garbage_is_unsupported_format():
    with pytest.raises(UnsupportedFormat, match="notes.txt"):
        imaging.decode(b"these are not pixels at all", name="notes.txt")


def test_oversized_images_are_refused_from_the_header():
    for side in (20_000, 100_000):  # under and over Pillow's own bomb limit
        with pytest.raises(ImageTooLarge, match="bomb.png.*decompression bomb") as error:
            imaging.decode(png_header_only(side, side), name="bomb.png")
        assert error.value.limit == imaging.MAX_PIXELS
    with pytest.raises(ImageTooLarge) as error:
        imaging.decode(png_header_only(600, 600), name="small.png", max_pixels=250_000)
    assert error.value.size == (600, 600)
    with pytest.raises(ImageTooLarge, match="scan.pdf page 1"):
        imaging.decode(scanned_pdf(), name="scan.pdf", max_pixels=500_000)


def test_pages_out_of_range_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="3 page"):
        imaging.decode(g4_tiff(pages=3), page=4, name="three.tif")
    with pytest.raises(InputError, match="2 page"):
        imaging.decode(vector_pdf([(612, 792)] * 2), page=3, name="two.pdf")
    with pytest.raises(NotFound, match="absent.tif"):
        imaging.decode(tmp_path / "absent.tif")


# -- one file, one image, one vector: ingest == CLI query == HTTP upload ----------------------------

#: (file name, file bytes, page): the name gives the patent number ingest files it under
CASES = {
    "g4-tiff": ("USD0900001.tif", g4_tiff, 1),
    "g4-tiff-page-2": ("USD0900002.tif", lambda: g4_tiff(pages=3), 2),
    "8-bit-tiff": ("USD0900003.tif", grey_tiff, 1),
    "16-bit-tiff": ("USD0900004.tif", sixteen_bit_tiff, 1),
    "png": ("USD0900005.png", big_png, 1),
    "jpeg-exif-rotated": ("USD0900006.jpg", lambda: rotated_jpeg(6)[0], 1),
    "pdf-vector-page": ("USD0900007.pdf", lambda: vector_pdf([(612, 792), (792, 612)]), 2),
    "pdf-scanned-page": ("USD0900008.pdf", scanned_pdf, 2),
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> dict[str, tuple[bytes, Image.Image]]:
    """Each case's file bytes and the PNG ingest stored for its page (through the real ingest)."""
    from figsearch.ingest.runner import ingest_paths
    from figsearch.store import Collection

    base = tmp_path_factory.mktemp("same-pixels")
    files = {}
    for case, (name, make, _) in CASES.items():
        files[case] = make()
        # images beside a PDF would count as the PDF's unreferenced files: one folder each
        folder = base / ("pdfs" if name.endswith(".pdf") else "images")
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(files[case])
    root = base / "collection"
    with Collection.open(root, create=True) as collection:
        summary = ingest_paths(collection, [base / "images", base / "pdfs"], jobs=1)
        assert summary.failures == [] and summary.documents == len(CASES)
        figures = {f.source_file.rsplit("/", 1)[-1] + f"#{f.page or 1}": f for f in collection.figures()}
        out = {}
        for case, (name, _, page) in CASES.items():
            figure = figures.get(f"{name}#{page}") or figures[f"{name}#1"]
            # as every reader of the collection decodes it (a bilevel drawing's 1-bit file as its "L" pixels)
            out[case] = (files[case], imaging.load_stored(collection.path(figure.image_path)))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_ingest_query_and_upload_give_the_same_pixels_and_vector(case, ingested, tmp_path):
    from figsearch.embed.catalog import create_visual

    name, _, page = CASES[case]
    data, stored = ingested[case]
    path = tmp_path / name
    path.write_bytes(data)
    query = load_query_image(path, page=page)  # the CLI's --image path (SearchService loads it so)
    query_bytes = load_query_image(data, name, page=page)  # the Python API with the file's bytes
    upload = decode_upload(data, Limits(), page=page, name=f"uploaded file {name!r}")  # POST /api/search
    assert stored.mode == query.mode == upload.mode == "L"
    for image in (query, query_bytes, upload):
        assert image.size == stored.size
        assert (pixels(image) == pixels(stored)).all()
    encoder = create_visual("hog")
    vectors = encoder.encode([stored, query, upload])
    assert np.array_equal(vectors[0], vectors[1]) and np.array_equal(vectors[0], vectors[2])


def test_the_stored_page_of_a_multi_page_file_is_the_page_asked_for(ingested):
    data, stored = ingested["g4-tiff-page-2"]
    first = decode_upload(data, Limits(), page=1)
    assert not (pixels(first) == pixels(stored)).all()
    image, pages = decode_upload_page(data, Limits(), page=2)
    assert pages == 3 and (pixels(image) == pixels(stored)).all()


def test_the_preview_route_shows_the_stored_pixels(ingested, tmp_path):
    """The HTTP route itself (``/api/preview`` decodes as ``/api/search`` does) for a rotated JPEG and a PDF page."""
    pytest.importorskip("fastapi")
    from server_fake import build_collection, make_client

    client, _ = make_client(build_collection(tmp_path / "served"))
    with client:
        for case in ("jpeg-exif-rotated", "pdf-vector-page"):
            name, _, page = CASES[case]
            data, stored = ingested[case]
            response = client.post("/api/preview", files={"image": (name, data)}, data={"page": str(page)})
            assert response.status_code == 200, response.text
            shown = Image.open(io.BytesIO(response.content))
            assert shown.mode == "L" and (pixels(shown) == pixels(stored)).all()


def test_ingest_stores_what_normalise_makes(ingested):
    """The stored PNG of a large sheet is the decoder's output normalised (grey, bounded)."""
    data, stored = ingested["png"]
    assert max(stored.size) == imaging.MAX_SIDE
    image, _ = imaging.decode(data)
    assert (pixels(imaging.normalise(image).image) == pixels(stored)).all()


def test_paths_as_strings_and_path_objects_agree(tmp_path):
    path = Path(tmp_path / "sheet.tif")
    path.write_bytes(grey_tiff())
    a, _ = imaging.load_drawing(str(path))
    b, _ = imaging.load_drawing(path)
    assert (pixels(a) == pixels(b)).all()
