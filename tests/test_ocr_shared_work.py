"""The OCR front end computes each thing once per sheet: the shortcuts give what recomputing gives.

The glyph filter's labelling serves the upright word detection and the label pass (boxes turned
instead of the sheet labelled again per rotation); the sheet's ink and header band are computed
once inside ``one_sheet``; the table finder's block reduction is exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ocr_drawings import drawing

pytest.importorskip("scipy")

from figsearch.ocr import sheet  # noqa: E402
from figsearch.ocr.preprocess import (block_any, detect_words, glyph_layer, ink_threshold, label_lines,
                                      rotate_boxes, table_boxes)  # noqa: E402


def _binary_with_components() -> np.ndarray:
    rng = np.random.default_rng(3)
    ink = np.zeros((90, 130), dtype=bool)
    for _ in range(25):
        y, x = rng.integers(0, 80), rng.integers(0, 120)
        ink[y:y + rng.integers(1, 10), x:x + rng.integers(1, 10)] = True
    return ink


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_turned_boxes_are_the_boxes_of_the_turned_array(rotation):
    from scipy import ndimage

    ink = _binary_with_components()
    def boxes_of(a):
        labels, _ = ndimage.label(a, structure=np.ones((3, 3), dtype=bool))
        return {(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)}
    turned = rotate_boxes(np.array(sorted(boxes_of(ink))), rotation, ink.shape)
    assert {tuple(b) for b in turned.tolist()} == boxes_of(np.rot90(ink, k=rotation // 90))


def _working_sheet() -> Image.Image:
    return drawing(["12", "14a", "16", "102", "7", "38"], "FIG. 3").convert("L")


def test_word_detection_from_the_glyph_filters_labels_equals_labelling_again():
    layer = glyph_layer(_working_sheet())
    binary = np.asarray(layer.image) < 128
    again = detect_words(binary)
    assert again  # the drawing has words to find
    assert detect_words(binary, labelled=layer.kept) == again
    assert detect_words(binary, labelled=layer.kept, reject_phantoms=False) == detect_words(binary, reject_phantoms=False)


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_label_lines_from_turned_boxes_equal_labelling_the_turned_sheet(rotation):
    grey = _working_sheet()
    layer = glyph_layer(grey)
    pixels = np.asarray(grey)
    ink = pixels < ink_threshold(pixels)
    assert np.array_equal(ink, layer.ink)
    view = np.rot90(ink, k=rotation // 90)
    expected = label_lines(view)
    assert expected or rotation  # upright, the label "FIG. 3" is a candidate line
    assert label_lines(view, boxes=rotate_boxes(layer.boxes, rotation, ink.shape)) == expected


@pytest.mark.parametrize("f", [2, 3, 4])
def test_block_reduction_equals_any_over_each_block(f):
    rng = np.random.default_rng(f)
    ink = rng.random((301, 403)) < 0.01
    h, w = ink.shape[0] // f, ink.shape[1] // f
    expected = ink[: f * h, : f * w].reshape(h, f, w, f).any(axis=(1, 3))
    assert np.array_equal(block_any(ink, f), expected)


def test_a_ruled_lattice_is_still_found_as_a_table():
    img = Image.new("L", (400, 301), 255)
    d = ImageDraw.Draw(img)
    for i in range(5):
        d.line((40, 40 + 50 * i, 360, 40 + 50 * i), fill=0, width=2)
        d.line((40 + 80 * i, 40, 40 + 80 * i, 240), fill=0, width=2)
    boxes = table_boxes(np.asarray(img) < 128)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    assert abs(x0 - 40) <= 6 and abs(y0 - 40) <= 6 and abs(x1 - 360) <= 6 and abs(y1 - 240) <= 6


def test_one_sheet_computes_the_ink_once_and_forgets_it_afterwards(monkeypatch):
    calls = []
    real = sheet._compute_ink
    monkeypatch.setattr(sheet, "_compute_ink", lambda image, side: calls.append(side) or real(image, side))
    image = _working_sheet()
    with sheet.one_sheet():
        first = sheet._ink(image)
        with sheet.one_sheet():  # nested: the same cache
            assert sheet._ink(image) is first
        sheet.header_band(image)
        sheet.content_box(image)
        sheet._ink(image, side=400)
        assert calls == [1000, 400]
        assert not first[0].flags.writeable  # shared: nobody may change it in place
    sheet._ink(image)
    sheet._ink(image)
    assert calls == [1000, 400, 1000, 1000]  # outside one_sheet nothing is kept


def test_reading_inside_and_outside_one_sheet_gives_the_same_words():
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine
    from figsearch.ocr.drawing import read_drawing

    engine = create_engine("tesseract")
    image = _working_sheet()
    inside = read_drawing(engine, image)
    outside = engine.read_words(image)  # no one_sheet around it
    assert {s.text for s in inside.signs} >= {"12", "14a", "16", "102", "38", "FIG. 3"}
    assert [w.text for w in engine.read_sheet(image)[0]] == [w.text for w in outside]


def test_the_three_by_three_closing_equals_scipys_filters():
    """``_close3`` (numpy shifts) is the closing that scipy's 1-d filters give, borders included."""
    from scipy import ndimage

    from figsearch.ocr.tesseract import _close3

    rng = np.random.default_rng(7)
    for _ in range(200):
        mask = rng.random((int(rng.integers(1, 14)), int(rng.integers(1, 14)))) < rng.random()
        grown = ndimage.maximum_filter1d(ndimage.maximum_filter1d(mask.view(np.uint8), 3, axis=0), 3, axis=1)
        closed = ndimage.minimum_filter1d(ndimage.minimum_filter1d(grown, 3, axis=0), 3, axis=1).astype(bool)
        assert np.array_equal(_close3(mask), closed)


def test_solidify_closes_a_dithered_word_and_leaves_a_clean_one():
    pytest.importorskip("tesserocr")
    from figsearch.ocr.preprocess import WordBox
    from figsearch.ocr.tesseract import solidify_dithered

    pixels = np.full((60, 120), 255, dtype=np.uint8)
    pixels[10:30, 10:40] = 0  # a clean, solid block
    checker = (np.add.outer(np.arange(20), np.arange(30)) % 2 == 0)
    pixels[10:30, 70:100][checker] = 0  # a dithered one, touching nothing
    pixels[58:60, 118:120] = 0  # ink at the sheet's corner: a word box past the border is clipped
    image = Image.fromarray(pixels)
    words = [WordBox((10, 10, 40, 30), 1, 1), WordBox((70, 10, 100, 30), 1, 1), WordBox((117, 57, 120, 60), 2, 1)]
    out = np.asarray(solidify_dithered(image, words))
    assert np.array_equal(out[:, :60], pixels[:, :60])  # the clean word is untouched
    assert (out[11:29, 71:99] == 0).all()  # the checkered strokes are solid
    assert np.array_equal(out[50:, 110:], pixels[50:, 110:])
    clean = [words[0]]
    assert solidify_dithered(image, clean) is image  # nothing dithered: the very same image


def test_the_crops_closed_together_are_each_crop_closed_alone():
    """``_dithered_closings`` lays the crops out on one canvas: per crop, the same closing (``_close3``)
    and the same pinhole test (``_pinholes``) as the crop alone, so the same crops are dithered. Masks
    of every density, crops of one pixel, crops all ink, one hole walled in, crops of odd shapes."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import tesseract

    rng = np.random.default_rng(11)
    walled = np.ones((3, 3), dtype=bool)
    walled[1, 1] = False  # closed, it gains an eighth of its ink; its one white region is no pinhole (``_pinholes``)
    fixed = [np.zeros((1, 1), dtype=bool), np.ones((1, 1), dtype=bool), np.ones((6, 4), dtype=bool), walled,
             (np.add.outer(np.arange(20), np.arange(30)) % 2 == 0)]
    checked = dithered = 0
    for trial in range(60):
        crops = list(fixed) if trial == 0 else []
        for _ in range(int(rng.integers(1, 40))):
            shape = (int(rng.integers(1, 70)), int(rng.integers(1, 200 if rng.random() < 0.1 else 60)))
            crops.append(rng.random(shape) < rng.choice([0.05, 0.3, 0.5, 0.7, 0.95]))
        expected = []
        for k, crop in enumerate(crops):
            closed = tesseract._close3(crop)
            ink = np.count_nonzero(crop)
            if np.count_nonzero(closed) - ink >= tesseract.DITHERED * max(1, ink) and tesseract._pinholes(crop):
                expected.append((k, closed))
        got = list(tesseract._dithered_closings(crops))
        assert [k for k, _ in got] == [k for k, _ in expected]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, expected))
        checked += len(crops)
        dithered += len(expected)
    assert dithered > 50 and checked - dithered > 50  # both kinds were met


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 9), (64, 48), (91, 133)])
def test_sparse_nonzero_equals_numpys_nonzero(shape):
    """The 8-bytes-at-a-time scan gives numpy's arrays, same order, whatever the density and size."""
    from figsearch.ocr.preprocess import sparse_nonzero

    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.001, 0.05, 0.5, 1.0):
        mask = rng.random(shape) < density
        for m in (mask, mask[:, ::-1], mask.T):  # non-contiguous views too
            ours, theirs = sparse_nonzero(m), np.nonzero(m)
            assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def _dithered_sheet() -> tuple[Image.Image, list]:
    from figsearch.ocr.preprocess import WordBox

    pixels = np.full((80, 400), 255, dtype=np.uint8)
    checker = (np.add.outer(np.arange(20), np.arange(20)) % 2 == 0)
    words = []
    for i in range(10):  # alternately solid and dithered words, one row
        x = 10 + 38 * i
        if i % 2:
            pixels[10:30, x:x + 20][checker] = 0
        else:
            pixels[10:30, x:x + 20] = 0
        words.append(WordBox((x, 10, x + 20, 30), 1, 1))
    return Image.fromarray(pixels), words


def test_solidify_gives_the_same_pixels_from_the_whole_array_and_from_crops():
    """Many words: the image is converted once and sliced; few: each crop alone. Same closing."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import tesseract

    image, words = _dithered_sheet()
    assert len(words) >= tesseract._WHOLE_ARRAY
    together = np.asarray(tesseract.solidify_dithered(image, words))
    one_by_one = np.asarray(image).copy()
    for word in words:  # each below _WHOLE_ARRAY: the crop path
        out = np.asarray(tesseract.solidify_dithered(image, [word]))
        x0, y0, x1, y1 = word.box
        one_by_one[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = out[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2]
    assert np.array_equal(together, one_by_one)
    assert not np.array_equal(together, np.asarray(image))  # the dithered words were closed


def test_reading_a_drawing_without_its_content_box_gives_the_same_words():
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine
    from figsearch.ocr.drawing import read_drawing

    engine = create_engine("tesseract")
    image = _working_sheet()
    full, words_only = read_drawing(engine, image), read_drawing(engine, image, content=False)
    assert full.content is not None and words_only.content is None
    assert (words_only.signs, words_only.words, words_only.header) == (full.signs, full.words, full.header)


def test_the_mosaic_is_handed_to_tesseract_as_raw_bytes_with_the_same_reading():
    """``SetImageBytes`` (the mosaic's bytes) reads what ``SetImage`` (tesserocr's encoded copy) read."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine

    engine = create_engine("tesseract")
    image = _working_sheet()
    raw = [(w.text, w.box, w.confidence) for w in engine.read(image)]

    class ThroughSetImage:
        def __init__(self, api):
            self.api = api

        def __getattr__(self, name):
            return getattr(self.api, name)

        def SetImageBytes(self, data, width, height, bytes_per_pixel, bytes_per_line):
            self.api.SetImage(Image.frombytes("L", (width, height), data))

    engine._api = ThroughSetImage(engine._api)
    assert [(w.text, w.box, w.confidence) for w in engine.read(image)] == raw
    assert {w.text for w in engine.read(image)} >= {"12", "16", "102"}


def test_the_smaller_ink_views_come_from_the_working_sheet_whoever_asks_first():
    """Stop 19: ``_ink``'s views (header band at 1000 px, gutters at 400 px) are scaled from the sheet
    scaled once to 1800 px (``scaled_grey``, the engine's working sheet), not from the sheet as stored
    again: the same masks inside ``one_sheet`` and outside it, in any order of asking."""
    image = Image.new("L", (2560, 3300), 255)
    draw = ImageDraw.Draw(image)
    draw.text((300, 200), "U.S. Patent   Nov. 17, 2020   Sheet 4 of 8   US D901,984 S", fill=0)
    draw.rectangle((600, 1100, 1900, 2500), outline=0, width=5)
    alone = {side: sheet._ink(image, side)[0].copy() for side in (1000, 400)}
    with sheet.one_sheet():
        first = sheet._ink(image, 400)[0]
        grey = sheet.scaled_grey(image)
        assert max(grey.size) == 1800 and sheet.scaled_grey(image) is grey  # computed once
        assert np.array_equal(first, alone[400]) and np.array_equal(sheet._ink(image, 1000)[0], alone[1000])
        assert sheet._ink(image, 1000)[1] == 3300 / 1000  # the scale back to the stored sheet's pixels


def test_a_surely_read_label_ends_the_orientation_search():
    """Stop 19: an orientation whose reading holds a figure label read at 0.75 or more is the sheet's
    way up; the other orientations are not read (each would cost tesseract a mosaic)."""
    from figsearch.ocr.base import OcrEngine, TextBox
    from figsearch.ocr.tesseract import SETTLED_LABEL, TesseractEngine

    class Two(OcrEngine):
        name = "two"

        def __init__(self, first):
            self.first, self.read_in = first, []

        def _read(self, image):
            self.read_in.append(image.size)
            return list(self.first) if len(self.read_in) == 1 else [TextBox("12", (1, 1, 9, 9), 0.6)]

        settled = TesseractEngine.settled

    label = [TextBox("FIG.", (10, 10, 40, 30), SETTLED_LABEL + 0.05, line=1), TextBox("3", (45, 10, 55, 30), 0.9, line=1)]
    engine = Two(label)
    engine._read_oriented(Image.new("L", (60, 40), 255), (0, 270, 90))
    assert engine.read_in == [(60, 40)]
    unsure = [TextBox("FIG.", (10, 10, 40, 30), 0.5, line=1), TextBox("3", (45, 10, 55, 30), 0.5, line=1)]
    engine = Two(unsure)
    engine._read_oriented(Image.new("L", (60, 40), 255), (0, 270, 90))
    assert engine.read_in == [(60, 40), (40, 60), (40, 60)]


# ---- stop 21: component boxes without find_objects; turned views without turning the layer ---------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_component_boxes_equal_find_objects(seed):
    from scipy import ndimage

    from figsearch.ocr.preprocess import component_boxes, sparse_nonzero

    rng = np.random.default_rng(seed)
    ink = rng.random((97, 131)) < (0.05, 0.3, 0.6)[seed]
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    ys, xs = sparse_nonzero(ink)
    expected = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)])
    assert count > 10
    assert np.array_equal(component_boxes(labels[ys, xs], count, ys, xs), expected)


def test_the_glyph_layer_is_the_kept_components_painted_black():
    layer = glyph_layer(_working_sheet())
    labels, lookup, count, _ = layer.kept
    assert count > 0
    assert np.array_equal(np.asarray(layer.image), np.where(lookup[labels] > 0, 0, 255).astype(np.uint8))
    ys, xs = layer.pixels
    assert all(np.array_equal(a, b) for a, b in zip((ys, xs), np.nonzero(np.asarray(layer.image) < 128)))


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 48), (91, 133)])
def test_turned_pixels_are_the_pixels_of_the_turned_mask(rotation, shape):
    from figsearch.ocr.preprocess import sparse_nonzero, turned_pixels

    rng = np.random.default_rng(rotation + sum(shape))
    for density in (0.0, 0.05, 0.5, 1.0):
        mask = rng.random(shape) < density
        ours = turned_pixels(sparse_nonzero(mask), rotation, mask.shape)
        theirs = np.nonzero(np.rot90(mask, k=rotation // 90))
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def _sideways_sheet() -> Image.Image:
    """Numerals and a label printed sideways (the sheet turned a quarter), as the orientation search meets them."""
    return _working_sheet().rotate(90, expand=True)


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("sheet_of", [_working_sheet, _sideways_sheet])
def test_words_of_a_turned_layer_from_its_upright_components_equal_labelling_it(rotation, sheet_of):
    """The turned layer's words from the upright labelling (turned, renumbered as a labelling of the
    turned layer numbers them) and its pixels (turned), without the turned image: the same words."""
    from figsearch.ocr.preprocess import turned_components, turned_pixels

    layer = glyph_layer(sheet_of())
    assert layer.kept is not None
    binary = np.asarray(layer.image.rotate(rotation, expand=True)) < 128
    expected = detect_words(binary)
    assert expected or rotation == 180
    shape = (layer.image.height, layer.image.width)
    pixels = turned_pixels(layer.pixels, rotation, shape)
    assert detect_words(None, labelled=turned_components(layer.kept, rotation), renumber=True, pixels=pixels) == expected


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_turned_view_gives_the_pixels_and_crops_of_the_turned_image(rotation):
    pytest.importorskip("tesserocr")
    from figsearch.ocr.tesseract import _TurnedView

    rng = np.random.default_rng(rotation)
    image = Image.fromarray((rng.random((37, 53)) * 255).astype(np.uint8))
    turned, view = image.rotate(rotation, expand=True), _TurnedView(np.asarray(image), rotation)
    assert view.size == turned.size
    assert np.array_equal(np.asarray(view), np.asarray(turned))
    pixels = np.asarray(image)
    for k in (rotation, 0):  # a copy asked for is a copy, whatever the turn (the closing writes into it)
        assert not np.shares_memory(np.array(_TurnedView(pixels, k)), pixels)
    for box in [(0, 0, 5, 5), (-4, -3, 10, 12), (turned.width - 3, turned.height - 2, turned.width + 6, turned.height + 4),
                (2, 3, 2, 9), (10, 10, 60, 60)]:  # inside, across each border, empty, larger than the image
        ours, theirs = view.crop(box), turned.crop(box)
        assert ours.size == theirs.size and ours.mode == theirs.mode == "L"
        assert ours.tobytes() == theirs.tobytes()


def test_the_engine_reads_turned_views_as_it_reads_the_turned_images(monkeypatch):
    """The engine's shortcut for turned views (``TesseractEngine._read_turned``) against the plain
    ``OcrEngine._read_turned`` (turn the layer, label it again): the same words in every rotation tried."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import create_engine
    from figsearch.ocr.base import OcrEngine
    from figsearch.ocr.tesseract import TesseractEngine

    engine = create_engine("tesseract")
    sheets = [_sideways_sheet(), _working_sheet()]
    taken = [engine.read_words(s) for s in sheets]
    monkeypatch.setattr(TesseractEngine, "_read_turned", OcrEngine._read_turned)
    plain = [engine.read_words(s) for s in sheets]
    assert {w.rotation for w in taken[0]} - {0}  # the sideways sheet was read turned
    assert taken == plain


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_a_turned_ink_mask_gives_the_pixels_and_crops_of_its_image(rotation):
    """The label pass reads the lines of the sheet's ink mask as an image (ink black on white)."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr.tesseract import _TurnedView

    mask = np.random.default_rng(rotation).random((41, 29)) < 0.3
    image = Image.fromarray(np.where(np.rot90(mask, k=rotation // 90), np.uint8(0), np.uint8(255)))
    view = _TurnedView(mask, rotation)
    assert view.size == image.size and np.array_equal(np.asarray(view), np.asarray(image))
    for box in [(0, 0, 7, 7), (-2, 5, 9, 50), (3, 3, 3, 8)]:
        assert view.crop(box).tobytes() == image.crop(box).tobytes() and view.crop(box).size == image.crop(box).size


def _group_from_every_pair(boxes: np.ndarray, gap: float) -> np.ndarray:
    """``preprocess._group``'s rule applied to all n × n pairs: the reference its pair searches must equal."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    x0, y0, x1, y1 = boxes.T.astype(np.float64)
    h = y1 - y0
    a, b = np.triu_indices(len(boxes), 1)
    overlap = np.minimum(y1[a], y1[b]) - np.maximum(y0[a], y0[b])
    hgap = np.maximum(x0[a], x0[b]) - np.minimum(x1[a], x1[b])
    keep = (overlap >= 0.5 * np.minimum(h[a], h[b])) & (hgap <= gap * np.maximum(h[a], h[b]))
    n = len(boxes)
    graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gap", [0.3, 0.6, 0.9, 1.1, 2.0])
def test_grouping_by_overlapping_rows_equals_grouping_every_pair(seed, gap, monkeypatch):
    """The groups (and their numbers) from the pairs of overlapping rows, and from the k-d tree's pairs
    (taken when there would be too many of those), equal the groups from every pair: boxes of many
    sizes, some sharing a top or a bottom, on rows and scattered."""
    from figsearch.ocr import preprocess

    rng = np.random.default_rng(seed)
    n = 300
    x0 = rng.integers(0, 1500, n)
    y0 = np.where(rng.random(n) < 0.5, rng.choice([100, 400, 401, 900], n), rng.integers(0, 1800, n))
    heights = np.where(rng.random(n) < 0.9, rng.integers(1, 40, n), rng.integers(40, 150, n))
    widths = rng.integers(1, 60, n)
    boxes = np.stack([x0, y0, x0 + widths, y0 + heights], axis=1)
    expected = _group_from_every_pair(boxes, gap)
    assert np.array_equal(preprocess._group(boxes, gap), expected)
    monkeypatch.setattr(preprocess, "_MAX_ROW_PAIRS", 0)
    assert np.array_equal(preprocess._group(boxes, gap), expected)


@pytest.mark.parametrize("rotation", [0, 180])
def test_solidify_on_a_turned_ink_mask_equals_solidify_on_its_image(rotation):
    """The label pass's ``_TurnedView`` of the ink mask is not converted whole for many words (its crops'
    ink is taken instead, ``ink_crop``): the same closed pixels as from the turned mask made an image."""
    pytest.importorskip("tesserocr")
    from figsearch.ocr import tesseract

    sheet, words = _dithered_sheet()
    mask = np.asarray(sheet) < 128
    if rotation == 180:  # the words where the turned view shows them
        from figsearch.ocr.preprocess import WordBox

        words = [WordBox((400 - w.box[2], 80 - w.box[3], 400 - w.box[0], 80 - w.box[1]), w.line, w.glyphs) for w in words]
    view = tesseract._TurnedView(mask, rotation)
    assert len(words) >= tesseract._WHOLE_ARRAY
    image = Image.fromarray(np.where(np.rot90(mask, k=rotation // 90), np.uint8(0), np.uint8(255)))
    from_view = np.asarray(tesseract.solidify_dithered(view, words))
    assert np.array_equal(from_view, np.asarray(tesseract.solidify_dithered(image, words)))
    assert not np.array_equal(from_view, np.asarray(image))  # dithered words were closed
