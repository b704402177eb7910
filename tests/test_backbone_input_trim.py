"""The backbone encoder's input of a drawing taller than wide: the first pass of the resize runs only as far
as the drawing reaches (``backbone._white_from``), and the pixels are the padded square's, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from figsearch.embed.encoders.backbone import _turned_prepared, _white_from
from figsearch.embed.preprocess import pad_to_square

SIZE = 288


def _square_resized(pixels: np.ndarray, turns: int) -> np.ndarray:
    """``prepare_drawing``'s pad and resize, the general path: the whole square resized by Pillow."""
    square = pad_to_square(Image.fromarray(np.ascontiguousarray(np.rot90(pixels, turns))))
    resample = Image.Resampling.LANCZOS if square.width < SIZE else Image.Resampling.BOX
    return np.asarray(square.resize((SIZE, SIZE), resample))


# sides of stored design sheets (2400, 2249, 1975), others around them, small ones (LANCZOS, enlarged), odd ones
SIDES = [2400, 2249, 1975, 1799, 1697, 3300, 2561, 1000, 577, 289, 288, 287, 200, 97, 13, 1234, 1501, 2047, 2999]


@pytest.mark.parametrize("side", SIDES)
def test_a_tall_drawing_gives_the_padded_squares_pixels(side):
    rng = np.random.default_rng(side)
    for width in {1, max(1, side // 7), max(1, side // 2), max(1, side - 3), int(rng.integers(1, side + 1))}:
        if width >= side:
            continue
        pixels = rng.integers(0, 256, (side, width), dtype=np.uint8)
        pixels[rng.random((side, width)) < 0.6] = 255  # paper, and ink of every grey
        for turns in (0, 2):
            assert np.array_equal(_turned_prepared(pixels, turns, SIZE), _square_resized(pixels, turns)), (side, width, turns)


def test_the_first_pass_is_cut_short_for_the_sheets_that_are_stored():
    # a sheet 1008 x 2400 (as many stored design sheets are): the drawing ends at column 1704 of the square, the
    # outputs from about 1704 / (2400 / 288) = 205 on are white; 2400 / 288 * n is a float for n a multiple of 3
    outputs, width = _white_from(2400, SIZE, 696 + 1008, Image.Resampling.BOX)
    assert 205 <= outputs < 210 and outputs % 3 == 0 and outputs * 2400 / SIZE <= width < 2400
    assert _white_from(2400, SIZE, 2400, Image.Resampling.BOX) is None  # the drawing reaches the last column
