"""benchmarks/sheet_context_eval.py's variants of a cut figure's stored vector (stop 30): the inputs a cut figure is
encoded from, and the mixes of figure and sheet."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from figsearch.embed.encoders.backbone import prepare_grey
from figsearch.embed.sheet_context import mix

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "sheet_context_eval.py"
_spec = importlib.util.spec_from_file_location("sheet_context_eval", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _sheet() -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A 400 x 600 sheet with two drawn boxes; the second (a wide strip) is the cut figure, at ``box``."""
    sheet = Image.new("L", (400, 600), 255)
    draw = ImageDraw.Draw(sheet)
    draw.rectangle((50, 40, 350, 300), outline=0, width=3)
    draw.rectangle((100, 400, 300, 450), outline=0, width=3)
    return sheet, (96, 396, 305, 455)


def _ink_extent(prepared: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero((prepared < 128).any(axis=1)), np.flatnonzero((prepared < 128).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def test_tight_is_the_crop_as_every_drawing_is_prepared():
    sheet, box = _sheet()
    crop = sheet.crop(box)
    np.testing.assert_array_equal(bench.prepared_cut(crop, sheet, box, "tight", 96), prepare_grey(crop, 96))


def test_a_margin_shrinks_the_figure_in_the_middle_of_the_square():
    sheet, box = _sheet()
    crop = sheet.crop(box)
    x0, _, x1, _ = _ink_extent(bench.prepared_cut(crop, sheet, box, "tight", 100))
    mx0, my0, mx1, my1 = _ink_extent(bench.prepared_cut(crop, sheet, box, "margin=0.25", 100))
    assert x1 - x0 > 95  # tight: the strip spans the square
    assert 60 <= mx1 - mx0 <= 70  # a quarter of the longer side white on each side: two thirds of the square
    assert abs((mx0 + mx1) / 2 - 50) <= 2 and abs((my0 + my1) / 2 - 50) <= 2


def test_place_keeps_the_figure_where_it_stood_at_the_sheets_scale():
    sheet, box = _sheet()
    crop = sheet.crop(box)
    placed = bench.prepared_cut(crop, sheet, box, "place", 300)
    whole = prepare_grey(sheet, 300)
    # only the strip's ink is left, and it is where the sheet's own input has it
    strip = whole.copy()
    strip[:225] = 255  # the upper drawing ends near 190, the strip starts near 262
    assert _ink_extent(placed) == _ink_extent(strip)
    assert (placed < 128).sum() < 0.5 * (whole < 128).sum()
    # scale: the same size as placed, centred
    sx0, sy0, sx1, sy1 = _ink_extent(bench.prepared_cut(crop, sheet, box, "scale", 300))
    px0, py0, px1, py1 = _ink_extent(placed)
    assert abs((sx1 - sx0) - (px1 - px0)) <= 2 and abs((sy0 + sy1) / 2 - 150) <= 2


def test_aspect_pads_a_strip_to_its_sheets_shape_before_the_square():
    sheet, box = _sheet()
    crop = sheet.crop(box)
    x0, _, x1, _ = _ink_extent(bench.prepared_cut(crop, sheet, box, "aspect", 120))
    # the sheet's drawn frame is 300 x 410 (portrait): the strip's width is 300/410 of the square's side
    assert abs((x1 - x0) / 120 - 300 / 410) < 0.04
    with pytest.raises(SystemExit, match="choose from"):
        bench.prepared_cut(crop, sheet, box, "stretch", 120)


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_the_mixes():
    own, sheet = {"vector": _unit(3, 8, 0), "head": 3 * _unit(3, 8, 1)}, {"vector": _unit(3, 8, 2), "head": _unit(3, 8, 3)}
    np.testing.assert_allclose(bench.mixed(own, sheet, 1.0, "sum", None, None), mix(own["vector"], sheet["vector"], 1.0),
                               atol=1e-6)
    # ink=P: each figure's beta scaled by its factor
    scale = np.array([0.5, 1.0, 2.0], np.float32)
    got = bench.mixed(own, sheet, 1.0, "ink=1", None, scale)
    for row, factor in enumerate(scale):
        np.testing.assert_allclose(got[row], mix(own["vector"][row : row + 1], sheet["vector"][row : row + 1], factor)[0],
                                   atol=1e-6)
    # head: the outputs before their normalisation, so a longer one weighs more
    head = bench.mixed(own, sheet, 1.0, "head", None, None)
    want = own["head"] + sheet["head"]
    np.testing.assert_allclose(head, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-6)
    with pytest.raises(SystemExit, match="choose from"):
        bench.mixed(own, sheet, 1.0, "max", None, None)


def test_the_taps_give_the_models_vector_and_rebuild_it_from_the_pooled_features():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from figsearch.embed.catalog import create_visual
    from figsearch.embed.encoders.backbone import default_model_path

    if not default_model_path().with_name("drawing-backbone5-lite0-288.onnx").is_file():
        pytest.skip("the shipped drawing-backbone5-lite0-288.onnx is absent")
    encoder = create_visual(bench.PLAIN, threads=1)
    taps = bench.Taps(encoder)
    sheet, box = _sheet()
    prepared = np.stack([prepare_grey(sheet, encoder.image_size), prepare_grey(sheet.crop(box), encoder.image_size)])
    features = taps.features(prepared)
    np.testing.assert_allclose(features["vector"], encoder.encode([sheet, sheet.crop(box)]), atol=1e-4)
    np.testing.assert_allclose(taps.from_pooled(features["pooled"]), features["vector"], atol=1e-5)
    head = features["head"] / np.linalg.norm(features["head"], axis=1, keepdims=True)
    np.testing.assert_allclose(head, features["vector"], atol=1e-5)
    # pooled at beta 0 is the figure's own vector
    own = {k: v[1:] for k, v in features.items()}
    other = {k: v[:1] for k, v in features.items()}
    np.testing.assert_allclose(bench.mixed(own, other, 0.0, "pooled", taps, None), own["vector"], atol=1e-5)


def test_a_second_vector_lets_a_row_score_by_the_better_of_its_two():
    vectors = np.eye(8, dtype=np.float32)[1:7]  # rows 0-5: e1..e6
    vectors[1] = (np.eye(8)[0] + np.eye(8)[2]) / np.sqrt(2)  # row 1 nearest the query e0
    query = np.eye(8, dtype=np.float32)[0]
    second = vectors.copy()
    second[2] = query  # row 2's second vector is the query itself
    has = np.zeros(6, bool)
    assert bench.visual_ranking(query, vectors, own=5, candidates=5)[0] == 1
    assert bench.visual_ranking(query, vectors, own=5, candidates=5, second=second, has_second=has)[0] == 1
    has[2] = True
    assert bench.visual_ranking(query, vectors, own=5, candidates=5, second=second, has_second=has)[0] == 2
