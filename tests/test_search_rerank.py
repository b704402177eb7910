"""Query-time re-ranking (alpha-query expansion + database-side augmentation) against hand computations."""

import math

import numpy as np
import pytest

from figsearch.search.rerank import augment, rerank, rerank_visual

# three unit vectors in the plane: x1 . x2 = .6, x2 . x3 = .8, x1 . x3 = 0
X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
Q = np.array([0.8, 0.6], dtype=np.float32)  # cosines .8, .96, .6


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_without_neighbours_the_scores_are_the_cosines():
    assert rerank(Q, X, method="aqe", query_neighbours=0, db_neighbours=1, alpha=3) == pytest.approx([0.8, 0.96, 0.6], abs=1e-6)


def test_query_expansion_adds_the_best_candidates_weighted_by_cosine_to_the_alpha():
    # best candidate x2 (cos .96), alpha 1: q' = unit(q + .96 x2)
    q1 = unit([0.8 + 0.96 * 0.6, 0.6 + 0.96 * 0.8])
    assert rerank(Q, X, method="aqe", query_neighbours=1, db_neighbours=1, alpha=1) == pytest.approx(X @ q1, abs=1e-6)
    # two neighbours, alpha 2: q' = unit(q + .96^2 x2 + .8^2 x1)
    q2 = unit(np.array([0.8, 0.6]) + 0.96**2 * X[1] + 0.8**2 * X[0])
    assert rerank(Q, X, method="aqe", query_neighbours=2, db_neighbours=1, alpha=2) == pytest.approx(X @ q2, abs=1e-6)


def test_database_side_augmentation_adds_each_candidates_nearest_neighbour():
    # nearest other: x1 -> x2 (.6), x2 -> x3 (.8), x3 -> x2 (.8); alpha 1
    expected = np.stack([unit([1 + 0.6 * 0.6, 0.6 * 0.8]), unit([0.6, 0.8 + 0.8]), unit([0.8 * 0.6, 1 + 0.8 * 0.8])])
    assert augment(X, 2, 1.0) == pytest.approx(expected, abs=1e-6)
    assert rerank(Q, X, method="aqe", query_neighbours=0, db_neighbours=2, alpha=1) == pytest.approx(expected @ np.array([0.8, 0.6]), abs=1e-6)


def test_several_query_rows_score_their_best():
    rows = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert rerank(rows, X, method="aqe", query_neighbours=0, db_neighbours=1, alpha=1) == pytest.approx([1.0, 0.8, 1.0], abs=1e-6)


def test_rerank_visual_rescores_the_visual_list_and_its_exact_scores_only():
    vectors = {"a": X[0], "b": X[1], "c": X[2]}
    lists = {"visual": [("b", 0.96), ("a", 0.8)], "text": [("c", 0.7)]}
    exact = {"visual": {"c": 0.6}, "text": {"a": 0.1, "b": 0.2}}
    asked = []

    def fetch(ids):
        asked.append(list(ids))
        return {f: vectors[f] for f in ids}

    new_lists, new_exact = rerank_visual(lists, exact, Q[None, :], fetch, method="aqe", query_neighbours=1, db_neighbours=1, alpha=1)
    q1 = unit([0.8 + 0.96 * 0.6, 0.6 + 0.96 * 0.8])
    cos = dict(zip("abc", X @ q1))
    assert asked == [["b", "a", "c"]]
    assert [f for f, _ in new_lists["visual"]] == ["b", "a"] and new_lists["text"] == lists["text"]
    assert dict(new_lists["visual"]) == pytest.approx({"a": cos["a"], "b": cos["b"]}, abs=1e-6)
    assert new_exact["visual"] == pytest.approx({"c": cos["c"]}, abs=1e-6)
    assert new_exact["text"] == exact["text"]
    assert math.isclose(sum(v * v for v in q1), 1.0)


def test_k_reciprocal_scores_by_shared_mutual_neighbours_against_a_hand_computation():
    from figsearch.search.rerank import k_reciprocal

    # angles 0 (query), 10, 25, 30 degrees; k1 = 1: each node's set is itself and its nearest, if mutual:
    # q <-> a (10 deg), b <-> c (5 deg); a's nearest is q (10 < 15 deg). So q and a share {q, a}; b, c share nothing
    angles = np.radians([10, 25, 30])
    candidates = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    query = np.array([1.0, 0.0], dtype=np.float32)
    d = 1 - np.cos(angles)
    e = math.exp(-d[0])
    common = 2 * e / (1 + e)  # q's weights (1, e) / (1 + e) and a's (e, 1) / (1 + e): sum of the minima
    jaccard = np.array([1 - common / (2 - common), 1.0, 1.0])
    for lam in (0.0, 0.5):
        expected = 1 - ((1 - lam) * jaccard + lam * d)
        assert k_reciprocal(query, candidates, k1=1, k2=1, lam=lam) == pytest.approx(expected, abs=1e-6)
    # lam = 1: the plain cosines; and through rerank(), as its spec names it
    assert k_reciprocal(query, candidates, k1=1, k2=1, lam=1.0) == pytest.approx(np.cos(angles), abs=1e-6)
    assert rerank(query, candidates, method="kreciprocal", k1=1, k2=1, lam=0.5) == pytest.approx(
        k_reciprocal(query, candidates, k1=1, k2=1, lam=0.5))


def test_k_reciprocal_lifts_a_candidate_that_shares_the_querys_neighbours():
    from figsearch.search.rerank import k_reciprocal

    # in the x-y plane the query (0 deg) and its group a (4 deg), b (9 deg); in the x-z plane a lone look-alike
    # L (7 deg from the query) whose own nearest are two drawings of its kind (9.5, 10.5 deg), not the query
    def at(deg, plane):
        r = math.radians(deg)
        return [math.cos(r), math.sin(r), 0.0] if plane == "xy" else [math.cos(r), 0.0, math.sin(r)]

    query = np.array(at(0, "xy"), dtype=np.float32)
    candidates = np.array([at(4, "xy"), at(9, "xy"), at(7, "xz"), at(9.5, "xz"), at(10.5, "xz")], dtype=np.float32)
    plain = candidates @ query
    assert plain[2] > plain[1]  # by cosine the look-alike L is above b ...
    scores = k_reciprocal(query, candidates, k1=2, k2=1, lam=0.3)
    assert scores[1] > scores[2]  # ... b shares the query's mutual neighbour a, L shares nothing: b comes first
    assert scores[0] == scores.max()
