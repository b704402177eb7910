"""Re-ranked score matrices for benchmarks that score vectors without a collection (``backbone_benchmark.py
--rerank``): the spec reader, the candidates' placement, and the metric ranking by a given matrix."""

from __future__ import annotations

import numpy as np
import pytest

from figsearch.search.rerank import rerank, reranked_similarities, settings_from_spec
from figsearch.train.metric import same_group_aps


def _vectors(n: int = 24, d: int = 8, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    groups = [i // 3 for i in range(n)]
    centres = rng.normal(size=(n // 3, d))
    vectors = centres[groups] + 0.6 * rng.normal(size=(n, d))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), groups


def test_specs_are_read_and_a_bad_one_is_named():
    assert settings_from_spec("2,4,3") == {"method": "aqe", "query_neighbours": 2, "db_neighbours": 4, "alpha": 3.0}
    assert settings_from_spec("kreciprocal,10,3,0.6") == {"method": "kreciprocal", "k1": 10, "k2": 3, "lam": 0.6}
    assert settings_from_spec("diffusion,10,3,0.9") == {"method": "diffusion", "graph_neighbours": 10, "gamma": 3.0,
                                                        "diffusion_alpha": 0.9}
    for bad in ("2,4", "diffusion,10,3", "a,b,c", ""):
        with pytest.raises(ValueError, match="re-ranking spec"):
            settings_from_spec(bad)


def test_plain_settings_keep_the_cosine_ranking_and_its_map():
    vectors, groups = _vectors()
    plain = same_group_aps(vectors, groups)
    assert same_group_aps(vectors, groups, similarities=vectors @ vectors.T) == plain
    # no query expansion, no augmentation: rerank gives the cosines back, so the ranking is unchanged
    same = reranked_similarities(vectors, 5, method="aqe", query_neighbours=0, db_neighbours=1)
    assert np.all(np.isneginf(np.diag(same)))
    assert same_group_aps(vectors, groups, similarities=same) == plain


def test_candidates_are_rescored_and_stay_above_the_rest():
    vectors, groups = _vectors(seed=1)
    settings = settings_from_spec("2,3,3")
    scores = reranked_similarities(vectors, 6, **settings)
    cosines = vectors @ vectors.T
    np.fill_diagonal(cosines, -np.inf)
    for q in (0, 7, 23):
        top = np.argsort(-cosines[q], kind="stable")[:6]
        rest = np.setdiff1d(np.flatnonzero(np.isfinite(cosines[q])), top)
        assert set(np.argsort(-scores[q], kind="stable")[:6]) == set(top)  # the same candidates, re-ordered
        assert scores[q, top].min() > scores[q, rest].max()
        np.testing.assert_allclose(scores[q, rest], cosines[q, rest])
        # the candidates' order is rerank()'s over exactly those candidates
        expected = top[np.argsort(-rerank(vectors[q], vectors[top], **settings), kind="stable")]
        assert list(np.argsort(-scores[q, top], kind="stable")) == [list(top).index(i) for i in expected]
    # re-ranking changes the metric here (this is not a no-op)
    assert same_group_aps(vectors, groups, similarities=scores) != same_group_aps(vectors, groups)
