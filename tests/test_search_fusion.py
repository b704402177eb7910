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


# -- auto calibrated by the visual encoder: the visual head's nearness ------------------------------

def test_nearness_is_the_heads_share_of_the_way_from_the_lists_mean_to_one():
    from figsearch.search.fusion import nearness

    # mean .6; first 3 .9 .8 .1 -> mean .6 -> 0; first 1 -> (.9 - .6) / .4
    assert nearness(LISTS["visual"], top=3) == pytest.approx(0.0)
    assert nearness(LISTS["visual"], top=1) == pytest.approx(0.75)
    assert nearness([("a", 1.0), ("b", 1.0)]) == 0.0  # no room left: flat
    assert nearness([]) == 0.0


def test_auto_ranks_as_avg_when_the_visual_head_is_near_and_by_the_text_when_it_is_far():
    # visual nearness of the first candidate: .75
    assert scores("auto", near_top=1, near=0.7) == scores("avg")
    assert scores("auto", near_top=1, near=0.8, far=0.8) == rounded(ZT)  # below far: the text's z alone
    # between the two thresholds (or none given): the gap and agreement rule
    between = scores("auto", gap_top=1, gap_power=1, agree_top=3, agree_power=1, near_top=1, near=0.8, far=0.7)
    assert between == scores("auto", gap_top=1, gap_power=1, agree_top=3, agree_power=1)
    # a query with one modality, or text_weight, ignores the thresholds
    only = {"visual": LISTS["visual"]}
    assert [f.figure_id for f in fuse(only, {}, mode="auto", near=0.0)] == ["a", "b", "c"]
    assert scores("auto", text_weight=0.5, near=0.0, far=1.0) == scores("avg")


def test_calibration_file_names_the_shipped_encoders_and_unknown_ones_get_none():
    from figsearch.search.fusion import near_thresholds

    drawing = near_thresholds("drawing")
    assert drawing["near"] is not None and drawing["far"] is not None and drawing["far"] < drawing["near"]
    # the backbone entry holds for the first shipped backbone model only (its file's digest), not for
    # the default multi-level model, whose cosines are on another scale
    assert near_thresholds("backbone", "3f317a65a0a53a48")["near"] is not None
    none = {"near": None, "far": None, "near_agree": 0.0}
    assert near_thresholds("backbone") == none
    assert near_thresholds("backbone", "7376fce99f7f5721") == none
    assert near_thresholds("drawing", "any-model-digest") == drawing
    assert near_thresholds("no-such-encoder") == none
    assert near_thresholds(None) == none


def _ap(ranked, relevant, k=50):
    hits, total = 0, 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


def _channel(rng, ids, relevant, informative, centre, spread):
    """Cosines for ``ids``: the relevant ones stand out when the channel is informative, else noise."""
    scores = {f: centre + spread * rng.standard_normal() for f in ids}
    if informative:
        for f in relevant:
            scores[f] = min(1.0, centre + 0.5 + 0.05 * rng.standard_normal())
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _noise_case(noisy: str, queries: int = 30) -> dict[str, float]:
    """Summed AP@50 per rule over constructed queries where the ``noisy`` channel is noise."""
    import numpy as np

    from figsearch.search.fusion import near_thresholds
    from figsearch.search.query import DEFAULT_MODE

    rng = np.random.default_rng(7)
    rules = {"visual": {"mode": "visual"}, "text": {"mode": "text"},
             "default": {"mode": DEFAULT_MODE, **near_thresholds("drawing")},
             "uncalibrated auto": {"mode": "auto"}}
    totals = {name: 0.0 for name in rules}
    for q in range(queries):
        ids = [f"q{q}-{i:03d}" for i in range(200)]
        relevant = set(ids[:4])
        lists = {
            # a drawing encoder's background sits low (~.2), a sentence encoder's near .3
            "visual": _channel(rng, ids, relevant, noisy != "visual", 0.2, 0.08),
            "text": _channel(rng, ids, relevant, noisy != "text", 0.3, 0.08),
        }
        for name, kwargs in rules.items():
            totals[name] += _ap([f.figure_id for f in fuse(lists, {}, **kwargs)], relevant)
    return totals


def test_default_mode_is_not_below_the_text_when_the_visual_channel_is_noise():
    # the class-level regime: drawings of the same kind of product are no nearer than any other
    totals = _noise_case("visual")
    assert totals["text"] > 5 * totals["visual"]  # the constructed case is what it says
    assert totals["default"] >= totals["text"]


def test_default_mode_follows_near_copies_when_the_text_is_noise():
    # near-copies in the visual channel switch auto to avg: the text's noise can still reorder a
    # few hits there (measured: 99 % of the visual channel's AP), where the uncalibrated rule,
    # anchored on the text, fell to the text's noise
    totals = _noise_case("text")
    assert totals["visual"] > 5 * totals["text"]
    assert totals["default"] >= 0.97 * totals["visual"]
    assert totals["uncalibrated auto"] < 0.5 * totals["visual"]


def test_the_backbone_calibration_names_the_shipped_first_backbone_file():
    from importlib import resources
    from pathlib import Path

    from figsearch.fsutil import sha256_file
    from figsearch.search.fusion import near_thresholds

    shipped = Path(str(resources.files("figsearch") / "models" / "drawing-backbone.onnx"))
    if not shipped.is_file():
        pytest.skip(f"{shipped} is not in this installation")
    assert near_thresholds("backbone", sha256_file(shipped)[:16])["near"] is not None


def _lookalike_case(queries: int = 30) -> dict[str, float]:
    """Summed AP@50 per rule where the visual head holds near drawings that are NOT relevant (drawings of the
    same kind of product, unseen in training, stop 20) and the text finds the relevant figures."""
    import numpy as np

    rng = np.random.default_rng(11)
    entry = {"near": 0.5, "far": 0.25}
    rules = {"text": {"mode": "text"}, "visual": {"mode": "visual"},
             "switch on nearness alone": {"mode": "auto", **entry, "near_agree": 0.0},
             "switch needs agreement": {"mode": "auto", **entry, "near_agree": 0.3}}
    totals = {name: 0.0 for name in rules}
    for q in range(queries):
        ids = [f"q{q}-{i:03d}" for i in range(200)]
        relevant = set(ids[:4])
        visual = _channel(rng, ids, relevant, False, 0.2, 0.08)
        lookalikes = {f: 0.9 + 0.02 * rng.standard_normal() for f in ids[10:13]}  # near, not relevant
        visual = sorted([(f, lookalikes.get(f, s)) for f, s in visual], key=lambda kv: (-kv[1], kv[0]))
        lists = {"visual": visual, "text": _channel(rng, ids, relevant, True, 0.3, 0.08)}
        for name, kwargs in rules.items():
            totals[name] += _ap([f.figure_id for f in fuse(lists, {}, **kwargs)], relevant)
    return totals


def test_a_near_visual_head_the_text_does_not_corroborate_does_not_pull_auto_below_the_text():
    from figsearch.search.fusion import nearness

    totals = _lookalike_case()
    assert totals["text"] > 5 * totals["visual"]  # the visual channel carries no signal here ...
    visual = [("a", 0.92), ("b", 0.9), ("c", 0.88)] + [(f"n{i}", 0.2) for i in range(197)]
    assert nearness(visual) > 0.5  # ... though its head is near: the switch's nearness alone would fire
    # the rule before stop 20 ranked such queries as avg and fell below the text; with the agreement required
    # the lookalikes are outvoted and auto keeps the text's hits on top
    assert totals["switch on nearness alone"] < 0.9 * totals["text"]
    assert totals["switch needs agreement"] >= totals["text"]


def test_near_copies_the_text_agrees_with_still_switch_auto_to_avg():
    lists = {"visual": [("a", 0.97), ("b", 0.95), ("c", 0.93), ("d", 0.2), ("e", 0.2), ("f", 0.1)],
             "text": [("b", 0.6), ("a", 0.55), ("c", 0.5), ("e", 0.45), ("d", 0.3), ("f", 0.2)]}
    avg = [f.figure_id for f in fuse(lists, {}, mode="avg")]
    auto = fuse(lists, {}, mode="auto", near=0.5, far=0.25, near_agree=0.3, agree_top=3)
    assert [f.figure_id for f in auto] == avg  # the first 3 of both lists agree: near-copies, ranked as avg
    lists["text"] = [("e", 0.6), ("d", 0.55), ("f", 0.5), ("a", 0.1), ("b", 0.1), ("c", 0.1)]
    auto = fuse(lists, {}, mode="auto", near=0.5, far=0.25, near_agree=0.3, agree_top=3)
    assert [f.figure_id for f in auto] != [f.figure_id for f in fuse(lists, {}, mode="avg")]  # no agreement: no switch


def test_auto_decides_its_switch_on_the_head_it_is_given():
    from figsearch.search.fusion import switch_head

    # the plain lists: a far visual head (h 0 over the first 3) and no agreement of the first 3
    plain = {"visual": [("a", 0.5), ("b", 0.5), ("c", 0.5), ("d", 0.5)], "text": [("d", 0.9), ("e", 0.8), ("f", 0.7)]}
    assert switch_head(plain, near_top=3, agree_top=3) == (0.0, 0.0)
    # the same visual list re-ranked: its head now looks near (the scores α-QE raised)
    reranked = {**plain, "visual": [("a", 0.99), ("b", 0.98), ("c", 0.97), ("d", 0.1)]}
    avg = [f.figure_id for f in fuse(reranked, {}, mode="avg")]
    measured = fuse(reranked, {}, mode="auto", near=0.5, agree_top=3)
    given = fuse(reranked, {}, mode="auto", near=0.5, agree_top=3, head=switch_head(plain, agree_top=3))
    assert [f.figure_id for f in measured] == avg  # measured on the re-ranked head it switches to avg ...
    assert [f.figure_id for f in given] != avg  # ... decided on the plain head it does not
    assert given == fuse(reranked, {}, mode="auto", agree_top=3)  # the rule without thresholds instead
    # a given head above the threshold switches, whatever the lists look like
    assert [f.figure_id for f in fuse(plain, {}, mode="auto", near=0.5, head=(0.6, 1.0))] == \
        [f.figure_id for f in fuse(plain, {}, mode="avg")]


@pytest.mark.parametrize("mode", ["zavg", "auto"])
def test_a_longer_list_for_the_next_page_scores_each_figure_as_the_first_page_did(mode):
    """Stop 27: page 2 searches longer lists; measured on the whole list, z-scores and auto's weights moved, and
    the pages repeated and skipped hits. Measured on the first page's depth, every figure keeps its score."""
    import random

    rng = random.Random(7)
    visual = sorted(((f"f{i}", rng.uniform(0.2, 0.9)) for i in range(40)), key=lambda x: -x[1])
    text = sorted(((f"f{i}", rng.uniform(0.1, 0.8)) for i in range(20, 60)), key=lambda x: -x[1])
    short = {"visual": visual[:12], "text": text[:12]}
    long = {"visual": visual, "text": text}
    exact = {m: {f: s for f, s in (visual if m == "visual" else text)} for m in ("visual", "text")}
    first = {f.figure_id: f.score for f in fuse(short, exact, mode=mode)}
    deeper = {f.figure_id: f.score for f in fuse(long, exact, mode=mode, measure_depth=12)}
    assert all(deeper[f] == pytest.approx(score) for f, score in first.items())
    unmeasured = {f.figure_id: f.score for f in fuse(long, exact, mode=mode)}
    assert any(unmeasured[f] != pytest.approx(score) for f, score in first.items())  # what the pages met before


def test_a_later_page_keeps_the_re_ranked_scores_the_first_page_gave():
    """Stop 27: database-side augmentation averages each candidate with its neighbours among the candidates; a later
    page's longer list moved the first page's candidates. They keep the first page's scores now."""
    import numpy as np

    from figsearch.search import rerank
    from figsearch.search.service import SearchService

    rng = np.random.default_rng(3)
    vectors = {f"f{i}": v / np.linalg.norm(v) for i, v in enumerate(rng.normal(size=(60, 8)).astype(np.float32))}
    query = rng.normal(size=8).astype(np.float32)
    query /= np.linalg.norm(query)
    visual = sorted(((f, float(v @ query)) for f, v in vectors.items()), key=lambda x: -x[1])
    fetch = lambda ids: {f: vectors[f] for f in ids}  # noqa: E731
    first, _ = rerank.rerank_visual({"visual": visual[:20]}, {}, query, fetch)
    later, _ = SearchService._rerank_visual({"visual": visual}, {}, query, 20, fetch)
    scores = dict(later["visual"])
    assert all(scores[f] == pytest.approx(s) for f, s in first["visual"])
    plain, _ = rerank.rerank_visual({"visual": visual}, {}, query, fetch)  # what a later page gave before
    assert any(dict(plain["visual"])[f] != pytest.approx(s) for f, s in first["visual"])
    # the first page itself is re-ranked as before
    same, _ = SearchService._rerank_visual({"visual": visual[:20]}, {}, query, None, fetch)
    assert same["visual"] == first["visual"]


def test_the_word_query_thresholds_rank_by_the_text_below_far_and_square_the_agreement_above():
    from figsearch.search.fusion import WORDS_THRESHOLDS, agreement

    assert WORDS_THRESHOLDS["near"] is None  # a word query never switches to avg, however near its head
    far = WORDS_THRESHOLDS["far"]
    # the head (nearness, agreement) the service measured before re-ranking decides
    assert scores("auto", head=(far - 0.01, 1.0), **WORDS_THRESHOLDS) == rounded(ZT)
    near = scores("auto", head=(0.99, 1.0), **WORDS_THRESHOLDS)
    assert near != scores("avg") and near == scores("auto", agree_power=2.0)
    # agreement squared: the visual weight falls faster with the lists' disagreement than agreement ** 1
    assert agreement(LISTS, 20) == 0.5 and scores("auto", agree_power=2.0) != scores("auto")
