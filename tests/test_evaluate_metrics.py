"""Measures against a hand computation on a tiny inline TREC example."""

from __future__ import annotations

import math

import pytest

from figsearch.errors import InputError
from figsearch.evaluate import metrics
from figsearch.evaluate.qrels import parse_qrels
from figsearch.evaluate.runs import parse_run
from figsearch.evaluate.scoring import score_runs

# q1: graded; q2: a tie in score; q3: nothing relevant; q4: judged but missing from the run;
# q9 is judged and run but not in the query set, so it must not move the means.
QRELS = """
q1 0 d1 2
q1 0 d2 1
q1 0 d3 0
q1 0 d4 1
q2 0 d5 1
q3 0 d6 0
q4 0 d7 1
q9 0 d1 1
"""
# q1: d2 and d9 tie at 0.5; trec_eval ranks ties by doc id descending, so d9 comes 3rd and d2 4th.
# q2: d8 and d5 tie at 0.7: d8 first, d5 second.
RUN = """
q1 Q0 d1 1 0.9 t
q1 Q0 d3 2 0.8 t
q1 Q0 d2 3 0.5 t
q1 Q0 d9 4 0.5 t
q2 Q0 d5 1 0.7 t
q2 Q0 d8 2 0.7 t
q3 Q0 d6 1 0.3 t
q9 Q0 d1 1 1.0 t
"""
QUERIES = ["q1", "q2", "q3", "q4"]


def _log2(x: float) -> float:
    return math.log(x, 2)


def test_measures_equal_hand_computation():
    qrels, run = parse_qrels(QRELS), parse_run(RUN)
    values = metrics.per_query(qrels, run, ["AP@50", "P@10", "R@50", "RR", "nDCG@10", "AP@3"], QUERIES)
    # q1 ranking: d1 (grade 2), d3 (0), d9 (unjudged), d2 (1); 3 relevant items (d1, d2, d4)
    ndcg_q1 = (2 / _log2(2) + 1 / _log2(5)) / (2 / _log2(2) + 1 / _log2(3) + 1 / _log2(4))
    expected = {
        "AP@50": {"q1": (1 / 1 + 2 / 4) / 3, "q2": (1 / 2) / 1, "q3": 0.0, "q4": 0.0},
        "AP@3": {"q1": (1 / 1) / 3, "q2": 0.5, "q3": 0.0, "q4": 0.0},  # divided by all 3 relevant
        "P@10": {"q1": 2 / 10, "q2": 1 / 10, "q3": 0.0, "q4": 0.0},
        "R@50": {"q1": 2 / 3, "q2": 1.0, "q3": 0.0, "q4": 0.0},
        "RR": {"q1": 1.0, "q2": 1 / 2, "q3": 0.0, "q4": 0.0},
        "nDCG@10": {"q1": ndcg_q1, "q2": 1 / _log2(3), "q3": 0.0, "q4": 0.0},
    }
    assert set(values) == set(expected)
    for name, per in expected.items():
        assert values[name].keys() == set(QUERIES), name
        for q, value in per.items():
            assert values[name][q] == pytest.approx(value, abs=1e-9), (name, q)


def test_means_count_missing_and_unjudged_queries_as_zero():
    qrels, run = parse_qrels(QRELS), parse_run(RUN)
    scores = score_runs(qrels, {"visual": run}, QUERIES, ["AP@50", "RR"], samples=200)
    means = scores.modes["visual"].means
    # four queries in the denominator, not the two that had something to score
    assert means["AP@50"] == pytest.approx((0.5 + 0.5) / 4)
    assert means["RR"] == pytest.approx((1 + 0.5) / 4)
    low, high = scores.modes["visual"].ci["AP@50"]
    assert 0.0 <= low <= means["AP@50"] <= high <= 0.5


def test_run_order_follows_trec_tie_rule():
    run = parse_run(RUN)
    assert [doc for doc, _ in run["q1"]] == ["d1", "d3", "d9", "d2"]
    assert [doc for doc, _ in run["q2"]] == ["d8", "d5"]


def test_empty_run_scores_zero_everywhere():
    values = metrics.per_query(parse_qrels(QRELS), {}, ["AP@50", "nDCG@10"], QUERIES)
    assert all(v == 0.0 for per in values.values() for v in per.values())


def test_bad_measure_name_is_reported():
    with pytest.raises(InputError, match="unknown measure 'XYZ@5'"):
        metrics.parse_measures(["XYZ@5"])


def test_randomization_test_exact_small_case():
    # diffs (1, 0, 1): |mean| >= 2/3 whenever the two non-zero signs agree: 4 of 8 patterns
    assert metrics.randomization_test([1, 0, 1], [0, 0, 0]) == pytest.approx(0.5)
    assert metrics.randomization_test([0.3, 0.2], [0.3, 0.2]) == 1.0


def test_randomization_test_sampled_is_seeded_and_detects_a_real_gap():
    a = [0.9] * 30 + [0.5] * 10
    b = [0.1] * 30 + [0.5] * 10
    p1 = metrics.randomization_test(a, b, samples=2000, seed=3)
    assert p1 == metrics.randomization_test(a, b, samples=2000, seed=3)
    assert p1 < 0.01
    # a 0.01 difference on 20 noisy queries is no win
    noisy_a = [0.2, 0.9, 0.4, 0.7, 0.1, 0.8, 0.6, 0.3, 0.5, 0.95] * 2
    noisy_b = [v - 0.3 if i % 2 else v + 0.28 for i, v in enumerate(noisy_a)]
    assert metrics.randomization_test(noisy_a, noisy_b, samples=2000) > 0.5


def test_bootstrap_ci_is_deterministic_and_degenerate_for_constants():
    assert metrics.bootstrap_ci([0.4] * 7, samples=500) == pytest.approx((0.4, 0.4))
    assert metrics.bootstrap_cis([[0.3], [0.7]], samples=500) == [(0.3, 0.3), (0.7, 0.7)]
    values = [0.0, 1.0, 0.5, 0.25, 0.75]
    assert metrics.bootstrap_ci(values, samples=500, seed=1) == metrics.bootstrap_ci(values, samples=500, seed=1)
    with pytest.raises(InputError):
        metrics.bootstrap_ci([])


def test_bootstrap_cis_are_the_percentiles_of_seeded_resample_means():
    """scipy's bootstrap against the plain computation: queries drawn with replacement from the seeded
    generator, one draw shared by all columns, percentiles of the means. The docs' intervals were
    measured with these draws (seed 0), so they must not change."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    columns = rng.random((3, 40)) * (rng.random((3, 40)) < 0.6)
    draws = np.random.default_rng(5).integers(0, 40, size=(2000, 40))
    means = columns[:, draws].mean(axis=2)  # columns x resamples
    expected = np.percentile(means, [2.5, 97.5], axis=1).T
    got = metrics.bootstrap_cis(columns.tolist(), samples=2000, seed=5)
    assert np.allclose(got, expected, atol=1e-12)
    assert metrics.bootstrap_ci(columns[1].tolist(), samples=2000, seed=5) == pytest.approx(tuple(expected[1]), abs=1e-12)


def test_holm_adjustment():
    adjusted = metrics.holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})
