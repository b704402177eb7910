"""Decoding and normalising images, and refusing hostile ones."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_helpers import drawing, write_tiff
from PIL import Image

from figsearch.errors import CorruptInput, InputError, UnsupportedFormat
from figsearch import imaging as images
from figsearch.ingest.detect import classify


def pages_of(path=None, data=None):
    return [(page, count, image.mode, image.size) for page, count, image in
            images.open_pages(path, data, source=str(path or "data"))]


def test_g4_tiff_single_and_multi_page(tmp_path):
    single = write_tiff(tmp_path / "one.tif")
    assert pages_of(single) == [(1, 1, "1", (400, 560))]
    multi = write_tiff(tmp_path / "three.tif", pages=3)
    assert [p[:2] for p in pages_of(multi)] == [(1, 3), (2, 3), (3, 3)]


def test_truncated_tiff_is_a_clear_error(tmp_path):
    data = write_tiff(tmp_path / "full.tif", size=(1200, 1600)).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptInput, match=r"cut\.tif.*truncated"):
        pages_of(cut)
    # cut after the header: the header reads, the pixels do not
    buffer = io.BytesIO()
    drawing((1200, 1600), mode="L").save(buffer, format="PNG")
    png = tmp_path / "cut.png"
    png.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(CorruptInput, match=r"cut\.png.*truncated"):
        pages_of(png)


def test_zero_byte_and_garbage(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(CorruptInput, match="empty"):
        pages_of(empty)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(InputError):
        pages_of(garbage)
    text = tmp_path / "notes.tif"
    text.write_bytes(b"hello, not an image")
    with pytest.raises(UnsupportedFormat):
        pages_of(text)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: only the header, as a bomb would start."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(30_000, 30_000))
    with pytest.raises(CorruptInput, match="900 MP exceeds the 178 MP limit.*decompression bomb"):
        pages_of(bomb)


def test_normalise_bounds_and_grey():
    sheet = drawing((3000, 4200))  # 1-bit, larger than the bound
    result = images.normalise(sheet)
    assert result.image.mode == "L" and max(result.image.size) == images.MAX_SIDE
    assert result.thumbnail.mode == "L" and max(result.thumbnail.size) == images.THUMB_SIDE
    assert result.original_size == (3000, 4200)
    # the drawing survives: dark ink remains where the box was drawn
    assert result.image.getextrema()[0] < 100
    small = images.normalise(drawing((300, 200), mode="L"))
    assert small.image.size == (300, 200)


def test_transparency_becomes_paper():
    rgba = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    assert images.to_grey(rgba).getextrema() == (255, 255)


def test_sixteen_bit_grey_is_scaled():
    deep = Image.new("I;16", (10, 10), 1000)
    deep.putpixel((0, 0), 60000)
    grey = images.to_grey(deep)
    assert grey.mode == "L" and grey.getextrema() == (0, 255)


def test_content_sniffing_not_extensions(tmp_path):
    png_named_txt = tmp_path / "drawing.txt"
    buffer = io.BytesIO()
    drawing(mode="L").save(buffer, format="PNG")
    png_named_txt.write_bytes(buffer.getvalue())
    assert classify(png_named_txt).name == "image"
    pdf_named_png = tmp_path / "x.png"
    pdf_named_png.write_bytes(b"%PDF-1.4\n...")
    assert classify(pdf_named_png).name == "pdf"


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=0, max_size=600))
def test_random_bytes_never_crash(data):
    try:
        list(images.open_pages(data=b"II*\x00" + data, source="fuzz"))
    except InputError:
        pass
