"""The backbone encoder's input of a drawing taller than wide: the first pass of the resize runs only where the
drawing is (``backbone._drawn_outputs``), and the pixels are the padded square's, to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from figsearch.embed.encoders.backbone import _box_windows, _drawn_outputs, _turned_prepared
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
    # a sheet 1008 x 2400 (as many stored design sheets are), padded to 2400 x 2400 with 696 white columns on the
    # left: the drawing is in outputs 83 to 205 of 288 (2400 / 288 = 8.33 columns each); a box edge at
    # 2400 / 288 * n is a float for n a multiple of 3
    first, end, width = _drawn_outputs(2400, SIZE, 696, 696 + 1008, Image.Resampling.BOX)
    assert 80 <= first <= 84 and 204 <= end < 210 and first % 3 == 0 == end % 3 and end * 2400 / SIZE <= width < 2400
    assert _drawn_outputs(2400, SIZE, 0, 2400, Image.Resampling.BOX) is None  # the drawing fills the square


def test_the_windows_worked_out_are_pillows():
    # ``_box_windows`` follows Pillow's arithmetic: a row of one bright pixel resized by Pillow lights the outputs
    # whose windows hold it, with the weight worked out (one 255 times the fixed-point weight, rounded)
    for side in (2400, 2249, 1975, 577, 300):
        first, weights = _box_windows(0.0, float(side), SIZE, side)
        for column in (0, side // 3, side // 2 + 1, side - 1):
            row = np.zeros((1, side), np.uint8)
            row[0, column] = 255
            got = np.asarray(Image.fromarray(row).resize((SIZE, 1), Image.Resampling.BOX))[0]
            at = column - first.astype(int)
            inside = (at >= 0) & (at < weights.shape[1])
            want = np.zeros(SIZE, np.int64)
            k = weights[inside, at[inside]].astype(np.int64)
            want[inside] = np.clip((255 * k + (1 << 21)) >> 22, 0, 255)
            assert np.array_equal(got, want), (side, column)
