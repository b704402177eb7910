"""Fusion rules against hand computations (no index, no encoders)."""

import pytest

from figsearch.search.fusion import RRF_K, fuse

LISTS = {
    "visual": [("a", 0.9), ("b", 0.8), ("c", 0.1)],
    "text": [("c", 0.7), ("d", 0.6)],
}
# exact cosines of the figures that fell outside a list; "d" has no visual vector, "a" no text
EXACT = {"visual": {"d": 0.2}, "text": {"b": 0.3}}


def scores(mode, **kwargs):
    return {f.figure_id: round(f.score, 9) for f in fuse(LISTS, EXACT, mode=mode, **kwargs)}


def test_avg_fills_from_exact_scores_and_counts_missing_as_zero():
    assert scores("avg") == {"a": 0.45, "b": 0.55, "c": 0.4, "d": 0.4}


def test_max_leaves_a_missing_modality_out():
    assert scores("max") == {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}


def test_rrf_adds_reciprocal_ranks_of_the_lists_a_figure_is_in():
    expected = {"a": 1 / (RRF_K + 1), "b": 1 / (RRF_K + 2), "c": 1 / (RRF_K + 3) + 1 / (RRF_K + 1), "d": 1 / (RRF_K + 2)}
    assert scores("rrf") == {k: round(v, 9) for k, v in expected.items()}


def test_text_weight_and_single_modes():
    assert scores("avg", text_weight=0.5) == scores("avg")
    assert scores("max", text_weight=1.0) == {"a": 0.0, "b": 0.3, "c": 0.7, "d": 0.6}
    assert scores("visual") == {"a": 0.9, "b": 0.8, "c": 0.1, "d": 0.2}
    assert list(scores("text")) == ["c", "d", "b"]  # "a" has no text vector: not ranked


def test_ties_break_by_figure_id_and_scores_are_kept():
    fused = fuse(LISTS, EXACT, mode="avg")
    assert [f.figure_id for f in fused] == ["b", "a", "c", "d"]
    assert fused[0].scores == pytest.approx({"visual": 0.8, "text": 0.3})
    assert fused[-1].scores == pytest.approx({"visual": 0.2, "text": 0.6})
