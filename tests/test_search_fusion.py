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


# z-scores: visual list .9 .8 .1 (mean .6, std sqrt(.38 / 3)); text list .7 .6 (mean .65, std .05)
SV = (0.38 / 3) ** 0.5
ZV = {"a": 0.3 / SV, "b": 0.2 / SV, "c": -0.5 / SV, "d": -0.4 / SV}  # d from its exact cosine .2
ZT = {"a": -1.0, "b": (0.3 - 0.65) / 0.05, "c": 1.0, "d": -1.0}  # a has no text: the list's lowest z


def rounded(values):
    return {k: round(v, 9) for k, v in values.items()}


def test_zavg_is_the_mean_of_per_query_z_scores():
    assert scores("zavg") == rounded({f: (ZV[f] + ZT[f]) / 2 for f in ZV})


def test_auto_without_agreement_keeps_the_text_anchor_only():
    # gaps (first candidate's z): visual .3/SV, text 1; the first 2 of each list share nothing
    got = scores("auto", gap_top=1, gap_power=1, agree_top=2, agree_power=1)
    assert got == rounded(ZT)
    assert list(got) == ["c", "a", "d", "b"]  # a and d tie at -1: figure id decides


def test_auto_weighs_visual_by_its_gap_and_the_lists_agreement():
    # first 3: visual {a, b, c}, text {c, d}: 1 shared of at most 2 -> agreement .5
    w_visual, w_text = (0.3 / SV) * 0.5, 1.0
    expected = {f: (w_visual * ZV[f] + w_text * ZT[f]) / (w_visual + w_text) for f in ZV}
    assert scores("auto", gap_top=1, gap_power=1, agree_top=3, agree_power=1) == rounded(expected)
    # squared gaps: text's gap is 1, visual's (.3/SV)^2
    w_visual = (0.3 / SV) ** 2 * 0.5
    expected = {f: (w_visual * ZV[f] + ZT[f]) / (w_visual + 1.0) for f in ZV}
    assert scores("auto", gap_top=1, gap_power=2, agree_top=3, agree_power=1) == rounded(expected)


def test_auto_gap_is_the_mean_z_of_the_first_candidates_and_primary_can_be_the_larger_gap():
    # gap_top 2: visual (z_a + z_b) / 2 = .25/SV ~ .70; text (1 + -1) / 2 = 0 -> text weighs 0 ...
    assert scores("auto", gap_top=2, gap_power=1, agree_top=3, agree_power=1, primary="visual") == rounded(ZV)
    # ... and with the larger gap as the anchor (primary=None) visual keeps its weight alone too
    assert scores("auto", gap_top=2, gap_power=1, agree_top=3, agree_power=1, primary=None) == rounded(ZV)


def test_auto_and_zavg_with_one_modality_rank_by_it():
    only = {"visual": LISTS["visual"]}
    for mode in ("auto", "zavg"):
        fused = fuse(only, {}, mode=mode)
        assert [f.figure_id for f in fused] == ["a", "b", "c"]
        assert [round(f.score, 9) for f in fused] == [round(ZV[f], 9) for f in "abc"]


def test_equal_scores_standardise_to_zero_and_text_weight_still_overrides():
    flat = {"visual": [("a", 0.5), ("b", 0.5)], "text": [("b", 0.9), ("a", 0.1)]}
    # visual z = 0 for both, text z = +1 / -1
    assert {f.figure_id: round(f.score, 9) for f in fuse(flat, {}, mode="zavg")} == {"a": -0.5, "b": 0.5}
    # first candidate only: text's gap is 1, visual's 0 -> text alone
    auto = fuse(flat, {}, mode="auto", gap_top=1)
    assert {f.figure_id: round(f.score, 9) for f in auto} == {"a": -1.0, "b": 1.0}
    # first two: both gaps are 0 -> equal weights, i.e. zavg
    auto = fuse(flat, {}, mode="auto", gap_top=2)
    assert {f.figure_id: round(f.score, 9) for f in auto} == {"a": -0.5, "b": 0.5}
    assert scores("auto", text_weight=0.5) == scores("avg")
