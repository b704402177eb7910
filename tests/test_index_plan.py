"""Index choice by size and memory budget, and approximate search against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from figsearch.index.modality import ModalityIndex, build
from figsearch.index.plan import EXACT_MAX, choose_plan


def test_small_collections_are_exact_large_ones_compressed_within_budget():
    assert choose_plan(1000, 512).factory == "Flat"
    assert choose_plan(EXACT_MAX, 512).exact
    plan = choose_plan(1_000_000, 512)
    assert plan.factory == "IVF4096,PQ128x4fs" and plan.rerank and plan.nprobe == 64
    # half-byte codes + list id + share of the centroids stay within 150 bytes per vector
    assert 128 / 2 + 8 + 4096 * 512 * 4 / 1_000_000 <= 150
    assert choose_plan(1_000_000, 256).factory == "IVF4096,PQ64x4fs"
    assert choose_plan(1_000_000, 256, bytes_per_vector=30).factory == "IVF4096,PQ32x4fs"
    assert choose_plan(200_000, 384).factory.startswith("IVF2048,PQ96x4fs")
    # from 8,192 lists on an HNSW graph assigns vectors to lists (a flat scan of 16,384 centroids per vector
    # dominated a 10^7 build)
    assert choose_plan(2_000_000, 256).factory == "IVF4096,PQ64x4fs"
    assert choose_plan(10_000_000, 256).factory == "IVF16384_HNSW32,PQ64x4fs"


def test_factory_override():
    plan = choose_plan(100, 64, factory="IVF16,PQ8x8")
    assert not plan.auto and plan.rerank and plan.nprobe == 16
    assert choose_plan(10**6, 64, factory="Flat").exact
    assert choose_plan(10**6, 64, factory="IVF256_HNSW32,PQ16").nprobe == 64


def _clustered(n, dim, centers=40, seed=0, points_seed=None):
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim)).astype(np.float32)
    if points_seed is not None:  # other points around the same centres: queries like the collection
        rng = np.random.default_rng(points_seed)
    x = middle[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ivfpq_with_exact_reranking_matches_flat(tmp_path):
    dim, n = 64, 6000
    x = _clustered(n, dim)
    ids = [f"F{i}" for i in range(n)]
    chunks = [(ids[i : i + 2500], x[i : i + 2500], i + 2500) for i in range(0, n, 2500)]
    plan = choose_plan(n, dim, factory="IVF64,PQ16x4np")
    entry = build(tmp_path, "visual", key="k", identity={}, dim=dim, plan=plan, chunks=chunks, generation=1)
    approximate = ModalityIndex.open(tmp_path, "visual", entry)
    assert approximate.vectors is not None and approximate.count == n
    # nprobe was calibrated on the stored vectors, to recall@50 0.95 plus a margin
    assert 8 <= entry["nprobe"] <= 32 and entry["calibrated_recall"] >= 0.95 + entry["calibration_margin"]
    # new points of the collection's kinds: what the calibration promises recall for (queries of
    # kinds the index has never seen are the appends' re-calibration's and retrain's business)
    queries = _clustered(30, dim, points_seed=1)
    recall = []
    for q in queries:
        truth = {ids[i] for i in np.argsort(-(x @ q))[:20]}
        found = approximate.search(q, 20)
        recall.append(len(truth & {f for f, _ in found}) / 20)
        # re-ranked scores are the exact cosines
        assert found[0][1] == pytest.approx(float(x[int(found[0][0][1:])] @ q), abs=1e-5)
    assert np.mean(recall) >= 0.95
