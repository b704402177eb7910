"""``imaging.grey_pixels``: the pixels of a grey image as NumPy sees them (``np.asarray``), read-only, shared with
the image where Pillow exports them (the stored PNGs' encoder and the backbone input read sheets through it)."""

from __future__ import annotations

import gc
import io

import numpy as np
import pytest
from PIL import Image

from figsearch.imaging import _arrow_view, encode_png, grey_pixels


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (2400, 1700), (33, 4097)])
def test_the_same_values_as_np_asarray_and_read_only(shape):
    values = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    image = Image.fromarray(values)
    pixels = grey_pixels(image)
    assert pixels.dtype == np.uint8 and pixels.shape == shape
    assert np.array_equal(pixels, np.asarray(image))
    assert not pixels.flags.writeable
    with pytest.raises(ValueError):
        pixels[0, 0] = 1


def test_shared_without_a_copy_where_pillow_exports_the_pixels():
    if not hasattr(Image.Image, "__arrow_c_array__"):
        pytest.skip("this Pillow has no Arrow export: grey_pixels copies, as np.asarray does")
    image = Image.new("L", (4, 3), 9)  # its own pixels (Image.fromarray's share the array's, read-only)
    pixels = _arrow_view(image)
    assert pixels is not None
    image.putpixel((1, 2), 200)  # the same memory: a change to the image shows in the array
    assert pixels[2, 1] == 200


def test_the_array_outlives_its_image():
    values = np.random.default_rng(5).integers(0, 256, (300, 200), dtype=np.uint8)
    image = Image.fromarray(values)
    pixels = grey_pixels(image)
    del image
    gc.collect()
    _ = [np.full(300 * 200, 7, np.uint8) for _ in range(50)]  # memory freed and reused would show here
    assert np.array_equal(pixels, values)


def test_a_lazily_opened_image_a_crop_and_other_modes():
    values = np.random.default_rng(6).integers(0, 256, (50, 40), dtype=np.uint8)
    stored = io.BytesIO()
    Image.fromarray(values).save(stored, format="PNG")
    stored.seek(0)
    with Image.open(stored) as lazy:  # not loaded yet
        assert np.array_equal(grey_pixels(lazy), values)
    assert np.array_equal(grey_pixels(Image.fromarray(values).crop((5, 10, 30, 45))), values[10:45, 5:30])
    one_bit = Image.new("1", (9, 4), 1)
    assert np.array_equal(grey_pixels(one_bit), np.asarray(one_bit))  # not "L": np.asarray's array


def test_encode_png_gives_the_same_bytes_as_from_a_copy():
    """The stored PNG's bytes do not depend on how its pixels were read (a view or np.asarray's copy)."""
    values = np.full((64, 80), 255, np.uint8)
    values[10:20, 5:70] = 0
    bilevel = Image.fromarray(values)
    values[30, 30] = 128
    grey = Image.fromarray(values)
    for image in (bilevel, grey):
        shared = encode_png(image)
        copied = encode_png(Image.frombytes("L", image.size, np.asarray(image).tobytes()))
        assert shared == copied
        with Image.open(io.BytesIO(shared)) as back:
            assert np.array_equal(np.asarray(back.convert("L")), np.asarray(image))
