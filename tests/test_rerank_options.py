"""Re-ranking options: off leaves every mode's results as they were; diffusion against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import hand_service

from figsearch.search import rerank as rr
from figsearch.search.fusion import MODES
from figsearch.search.query import Query, rerank_by_default


@pytest.fixture
def service(collection_dir):
    with hand_service(collection_dir) as s:
        yield s


def hits(result):
    return [(h.figure_id, round(h.score, 9), tuple(sorted(h.scores.items()))) for h in result.hits]


@pytest.mark.parametrize("mode", MODES)
def test_rerank_off_never_changes_results(service, mode):
    plain = service.search(Query(figure_id="US1-A", mode=mode, k=10, rerank=False))
    default = service.search(Query(figure_id="US1-A", mode=mode, k=10))
    forced = service.search(Query(figure_id="US1-A", mode=mode, k=10, rerank=True))
    # a query that does not say gets its mode's default: re-ranked in the visual mode and auto (stop 22)
    assert hits(default) == hits(forced if rerank_by_default(mode) else plain)
    assert rerank_by_default(mode) == (mode in ("visual", "auto"))
    # the visual scores of a plain search are the cosines of the angles (fake-angle), unchanged
    angles = {"US1-B": 30, "US2-C": 60, "US2-D": 90, "EP3-E": 10}
    for h in plain.hits:
        if "visual" in h.scores:
            assert h.scores["visual"] == pytest.approx(math.cos(math.radians(angles[h.figure_id])), abs=1e-5)
    on = service.search(Query(figure_id="US1-A", mode="visual", k=10, rerank=True))
    assert [h.score for h in on.hits] != [h.score for h in service.search(Query(figure_id="US1-A", mode="visual", k=10, rerank=False)).hits]


def test_diffusion_is_the_random_walk_with_restart_over_the_neighbour_graph():
    angles = np.radians([0, 20, 40, 90])
    candidates = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    query = np.array([np.cos(np.radians(10)), np.sin(np.radians(10))], np.float32)
    got = rr.rerank(query, candidates, method="diffusion", graph_neighbours=2, gamma=1.0, diffusion_alpha=0.5,
                    iterations=60)
    # by hand: nodes q, c0..c3; each joins its 2 nearest (cos^1), made symmetric; S = D^-1/2 W D^-1/2
    nodes = np.vstack([query, candidates]).astype(np.float64)
    sim = nodes @ nodes.T
    w = np.zeros((5, 5))
    for i in range(5):
        order = [j for j in np.argsort(-sim[i]) if j != i][:2]
        w[i, order] = np.maximum(sim[i, order], 0)
    w = np.maximum(w, w.T)
    d = 1 / np.sqrt(w.sum(1))
    f = 0.5 * np.linalg.inv(np.eye(5) - 0.5 * w * d[:, None] * d[None, :])[:, 0]
    expected = f[1:] / f[1:].max() * float((candidates @ query).max())
    assert got == pytest.approx(expected, abs=1e-5)
    assert np.argmax(got) in (0, 1) and got[3] == pytest.approx(expected[3], abs=1e-6)  # the far one stays last
    assert got[3] < got[2] < min(got[0], got[1])


def test_diffusion_through_rerank_visual_and_an_unknown_method():
    vectors = {"a": np.array([1.0, 0.0], np.float32), "b": np.array([0.6, 0.8], np.float32), "c": np.array([0.0, 1.0], np.float32)}
    lists = {"visual": [("a", 0.8), ("b", 0.96)], "text": [("c", 0.7)]}
    exact = {"visual": {"c": 0.6}}
    query = np.array([[0.8, 0.6]], np.float32)
    new_lists, new_exact = rr.rerank_visual(lists, exact, query, lambda ids: {f: vectors[f] for f in ids},
                                            method="diffusion", graph_neighbours=2)
    scores = rr.rerank(query, np.stack([vectors[f] for f in "abc"]), method="diffusion", graph_neighbours=2)
    assert dict(new_lists["visual"]) == pytest.approx({"a": scores[0], "b": scores[1]}, abs=1e-6)
    assert new_exact["visual"] == pytest.approx({"c": scores[2]}, abs=1e-6)
    with pytest.raises(ValueError, match="unknown re-ranking method"):
        rr.rerank(query, np.stack(list(vectors.values())), method="nope")


def test_auto_reranked_switches_on_the_head_before_reranking(service, monkeypatch):
    from figsearch.search import fusion

    seen = {}
    real_fuse, real_rerank = fusion.fuse, rr.rerank_visual

    def fuse(lists, exact=None, **kwargs):
        seen["head"], seen["lists"] = kwargs.get("head"), lists
        return real_fuse(lists, exact, **kwargs)

    def rerank_visual(lists, exact, *args, **kwargs):
        seen["plain"] = fusion.switch_head(lists)
        return real_rerank(lists, exact, *args, **kwargs)

    monkeypatch.setattr("figsearch.search.service.fuse", fuse)
    monkeypatch.setattr(rr, "rerank_visual", rerank_visual)
    service.search(Query(figure_id="US1-A", mode="auto", k=10, rerank=True))
    assert seen["head"] == seen["plain"]  # measured on the lists before re-ranking
    assert seen["head"] != fusion.switch_head(seen["lists"])  # which differ from the re-ranked ones here
    service.search(Query(figure_id="US1-A", mode="auto", k=10, rerank=False))
    assert seen["head"] is None  # not re-ranked: fuse measures the lists it gets
