"""Stored PNGs: the fast encoder keeps every pixel, and a drawing stored before keeps its file and digest."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from ingest_helpers import drawing, write_us_document
from PIL import Image

from figsearch.imaging import encode_png, load_stored, stored_pixels_equal
from figsearch.ingest.runner import ingest_paths
from figsearch.store import Collection
from figsearch.store.files import write_png


def _pillow_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # how ingest stored drawings before (adaptive row filters)
    return buffer.getvalue()


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


GREYS = {
    "drawing": drawing((403, 561), mode="L"),
    "noise": Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8), "L"),
    "one pixel": Image.new("L", (1, 1), 7),
    "one row": Image.fromarray(np.arange(256, dtype=np.uint8)[None, :], "L"),
    "a crop": drawing((400, 560), mode="L").crop((13, 17, 211, 302)),
}


@pytest.mark.parametrize("name", GREYS)
@pytest.mark.parametrize("level", [1, 6])
def test_grey_images_decode_to_the_same_pixels(name, level):
    image = GREYS[name]
    data = encode_png(image, level)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    back = load_stored(io.BytesIO(data))
    assert (back.mode, back.size) == ("L", image.size)
    assert back.tobytes() == image.tobytes()
    # no row filter: every row starts with filter type 0 (the fast path, not Pillow's adaptive filters)
    import zlib

    depth = _bit_depth(data)
    assert depth == (1 if set(np.unique(np.asarray(image)).tolist()) <= {0, 255} else 8)
    idat = data[data.index(b"IDAT") + 4:data.index(b"IEND") - 8]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(image.height, (image.width * depth + 7) // 8 + 1)
    assert not raw[:, 0].any()


def _bit_depth(png: bytes) -> int:
    return png[24]  # IHDR: 8 bytes of signature, length, "IHDR", width, height, then the bit depth


def _bilevel(shape, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).choice(np.array([0, 255], np.uint8), shape), "L")


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 9), (300, 403), (600, 16)])
def test_bilevel_grey_images_are_stored_1_bit_and_load_as_the_same_grey(shape):
    image = _bilevel(shape)
    data = encode_png(image)
    assert _bit_depth(data) == 1
    assert _decoded(data).mode == "1"  # what Pillow opens ...
    back = load_stored(io.BytesIO(data))  # ... and what every reader of the collection gets
    assert (back.mode, back.size, back.tobytes()) == ("L", image.size, image.tobytes())
    assert stored_pixels_equal(data, image)
    if shape[0] * shape[1] > 1000:
        assert len(data) < len(_pillow_png(image)) / 2  # random bits: deflate finds little in either


@pytest.mark.parametrize("where", [(0, 0), (299, 402), (257, 3), (511, 100)])
def test_one_grey_pixel_keeps_an_image_8_bit(where):
    """The bilevel test looks at every band of rows, not only the first."""
    pixels = np.asarray(_bilevel((600, 403), seed=1)).copy()
    pixels[where] = 254
    image = Image.fromarray(pixels, "L")
    data = encode_png(image)
    assert _bit_depth(data) == 8
    assert load_stored(io.BytesIO(data)).tobytes() == image.tobytes()
    assert not stored_pixels_equal(encode_png(Image.fromarray(np.where(pixels > 127, 255, 0).astype(np.uint8), "L")),
                                   image)


def test_load_stored_leaves_other_modes_as_stored():
    for image in (GREYS["noise"], Image.new("RGB", (4, 3), (1, 2, 3))):
        back = load_stored(io.BytesIO(encode_png(image)))
        assert (back.mode, back.tobytes()) == (image.mode, image.tobytes())


@pytest.mark.parametrize("image", [
    Image.new("RGB", (20, 10), (10, 200, 30)),
    drawing((60, 80), mode="1"),
    Image.new("LA", (5, 5), (100, 50)),
])
def test_other_modes_go_through_pillow_unchanged(image):
    back = _decoded(encode_png(image))
    assert (back.mode, back.size, back.tobytes()) == (image.mode, image.size, image.tobytes())


def test_grey_with_transparency_keeps_it():
    image = Image.new("L", (8, 8), 3)
    image.info["transparency"] = 3
    assert _decoded(encode_png(image)).info.get("transparency") == 3


def test_stored_pixels_equal():
    image = GREYS["drawing"]
    assert stored_pixels_equal(_pillow_png(image), image)
    other = image.copy()
    other.putpixel((5, 5), 128)
    assert not stored_pixels_equal(_pillow_png(image), other)
    assert not stored_pixels_equal(_pillow_png(image.crop((0, 0, 100, 100))), image)  # another size
    assert not stored_pixels_equal(_pillow_png(image.convert("RGB")), image)  # another mode
    # a bilevel drawing stored 8-bit before (and one stored 1-bit now) match its "L" pixels both ways
    bilevel = _bilevel((40, 30))
    assert stored_pixels_equal(_pillow_png(bilevel), bilevel) and stored_pixels_equal(encode_png(bilevel), bilevel)
    assert not stored_pixels_equal(encode_png(bilevel), bilevel.convert("1"))  # the file is "L" to readers, not "1"
    assert not stored_pixels_equal(b"\x89PNG\r\n\x1a\n broken", image)


def test_write_png_keeps_a_file_with_the_same_pixels(tmp_path):
    image = GREYS["drawing"]
    old = _pillow_png(image)
    path = tmp_path / "images" / "US1" / "a.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(old)
    assert write_png(tmp_path, "images/US1/a.png", image) == hashlib.sha256(old).hexdigest()
    assert path.read_bytes() == old

    changed = image.copy()
    changed.putpixel((0, 0), 0)
    sha = write_png(tmp_path, "images/US1/a.png", changed)
    assert path.read_bytes() == encode_png(changed) and sha == hashlib.sha256(encode_png(changed)).hexdigest()

    path.write_bytes(old[:40])  # damaged: written again
    assert write_png(tmp_path, "images/US1/a.png", image) == hashlib.sha256(encode_png(image)).hexdigest()
    path.write_bytes(old)  # keep_same=False (thumbnails): always written
    write_png(tmp_path, "images/US1/a.png", image, keep_same=False)
    assert path.read_bytes() == encode_png(image)


def test_ingest_again_keeps_the_digests_of_drawings_stored_the_old_way(tmp_path):
    """A collection whose drawings Pillow encoded (figsearch before stop 22) ingested again with
    --force: same pixels, so the same files and digests, and nothing derived from them goes stale."""
    data = write_us_document(tmp_path / "data" / "US20250204297A1-20250626", sheets=2)
    root = tmp_path / "collection"
    with Collection.open(root, create=True) as collection:
        ingest_paths(collection, [data])
        sheets = collection.figures(patent="US20250204297A1")
        assert len(sheets) == 3
        old = {}
        for sheet in sheets:  # store them as Pillow did, with those files' digests
            path = collection.path(sheet.image_path)
            data_old = _pillow_png(load_stored(path))  # 8-bit grey, as Pillow stored every drawing
            assert data_old != path.read_bytes()
            path.write_bytes(data_old)
            old[sheet.figure_id] = hashlib.sha256(data_old).hexdigest()
            with collection.transaction() as db:
                db.execute("UPDATE figures SET image_sha256=? WHERE figure_id=?", (old[sheet.figure_id], sheet.figure_id))
        files = {f.figure_id: collection.path(f.image_path).read_bytes() for f in sheets}
        ingest_paths(collection, [data], force=True)
        again = collection.figures(patent="US20250204297A1")
        assert {f.figure_id: f.image_sha256 for f in again} == old
        assert {f.figure_id: collection.path(f.image_path).read_bytes() for f in again} == files
