"""How many inverted lists an IVF index must probe: measured on the collection's own vectors.

How much of an IVF index a query has to visit for a given recall depends on the data: on
well-clustered embeddings a few lists suffice, on diffuse ones many more. Rather than guess,
a build takes a sample of the stored vectors as queries, finds their exact neighbours by brute
force, and picks the smallest ``nprobe`` (doubling from 8) whose re-ranked results reach
``RECALL_TARGET`` at k = 50 — then doubles it once more, because stored vectors are kinder
queries than new drawings (the lists were trained on them: on clustered test data held-out
queries reached 0.93 where the stored ones reached 1.0 at the same nprobe). It is capped so
that a query scans at most ``MAX_SCANNED_CODES`` codes and half of the lists (at 10^6 × 256,
250,000 4-bit codes took p50 16 ms / p95 31 ms per query on this 2-core machine under a load of
12-15, docs/index-scale.md; the cap was raised to 500,000 when diffuse data needed more than a
quarter of the lists). Where the cap still misses the target, more re-ranking candidates are
tried (``calibrate_candidates``). The recall reached and the candidates are kept in the
manifest, so ``figsearch index`` and ``info`` can say it.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

RECALL_TARGET = 0.95
CALIBRATION_K = 50
CALIBRATION_QUERIES = 100
#: brute-force neighbours are computed over this many stored vectors at a time
EXACT_CHUNK = 100_000
MAX_SCANNED_CODES = 500_000
#: multiples of the default re-ranking candidates tried when the nprobe cap misses the recall target
WIDER_CANDIDATES = (2.5, 5)
#: with wider candidates, nprobe steps down only while recall stays this far above the target
STEP_DOWN_MARGIN = 0.01
#: wider candidates are kept at a calibrated nprobe when they gain this much recall on the calibration queries
CANDIDATE_GAIN = 0.01


def exact_neighbours(faiss, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best inner products, best first, streaming over the (memory-mapped) vectors."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), EXACT_CHUNK):
        chunk = np.ascontiguousarray(vectors[start : start + EXACT_CHUNK], dtype=np.float32)
        scores, ids = faiss.knn(queries, chunk, min(k, len(chunk)), metric=faiss.METRIC_INNER_PRODUCT)
        best_scores = np.hstack([best_scores, scores])
        best_ids = np.hstack([best_ids, ids + start])
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return best_ids


def calibration_set(faiss, vectors: np.ndarray, seed: int = 7, newest: int = 0):
    """(queries, their own positions or -1, exact neighbours with one extra, k): computed once and
    passed to both calibrations (the exact neighbours are a scan of all vectors)."""
    n = len(vectors)
    k = min(CALIBRATION_K, n - 1)
    rng = np.random.default_rng(seed)
    size = min(CALIBRATION_QUERIES, n)
    if 0 < newest < n:
        recent = min(size // 2, newest)
        sample = np.concatenate([
            rng.choice(n - newest, size=size - recent, replace=False),
            n - newest + rng.choice(newest, size=recent, replace=False),
        ])
        sample = np.sort(sample)
    else:
        sample = np.sort(rng.choice(n, size=size, replace=False))
    queries = np.ascontiguousarray(vectors[sample], dtype=np.float32)
    # each query is itself in the index: ask for one more and leave it out on both sides
    truth = exact_neighbours(faiss, vectors, queries, k + 1)
    if newest:
        # After appends, stored vectors are too kind as queries: each sits in the list it was
        # assigned to, with its neighbours. Queries moved off their vector by half the distance
        # to its nearest neighbour behave like new drawings (measured: benchmarks/index_benchmark.py
        # --appends, where stored queries promised 0.96 and new ones got 0.92 at the same nprobe).
        nearest = np.asarray(vectors[truth[:, 1]], dtype=np.float32)
        gap = np.linalg.norm(queries - nearest, axis=1, keepdims=True)
        noise = rng.standard_normal(queries.shape).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        moved = queries + 0.5 * gap * noise
        queries = np.ascontiguousarray(moved / np.linalg.norm(moved, axis=1, keepdims=True), dtype=np.float32)
        truth = exact_neighbours(faiss, vectors, queries, k + 1)
        sample = np.full(len(queries), -1)  # no query is in the index any more
    return queries, sample, truth, k


def _measured_recall(index, vectors, search, queries, sample, truth, k: int, **options) -> float:
    found = 0
    for row, own, expected in zip(queries, sample, truth):
        got = [p for p in search(index, vectors, row, k + 1, **options) if p != own][:k]
        found += len(set(got) & (set(expected.tolist()) - {own}))
    return found / (k * len(sample))


def calibrate_nprobe(faiss, index, vectors: np.ndarray, nlist: int, search, *, seed: int = 7,
                     newest: int = 0, calibration=None) -> tuple[int, float]:
    """(nprobe, recall@50 it reached) for ``index``; ``search(index, vectors, query, k)`` is the
    re-ranking search the service uses, returning positions best first.

    ``newest``: the last ``newest`` vectors were appended after the lists were trained; half of
    the queries come from them, because vectors unlike the training sample (a new kind of
    drawing) are where an old partition loses recall first.
    """
    n = len(vectors)
    queries, sample, truth, k = calibration or calibration_set(faiss, vectors, seed, newest)
    cap = max(min(nlist, 32), min(nlist // 2, MAX_SCANNED_CODES * nlist // n))
    nprobe, recall = 8, 0.0
    space = faiss.ParameterSpace()
    while True:
        nprobe = min(nprobe, cap)
        space.set_index_parameter(index, "nprobe", nprobe)
        recall = _measured_recall(index, vectors, search, queries, sample, truth, k)
        log.info("nprobe %d of %d lists: recall@%d %.3f", nprobe, nlist, k, recall)
        if recall >= RECALL_TARGET or nprobe >= cap:
            break
        nprobe *= 2
    if recall >= RECALL_TARGET:
        nprobe = min(nprobe * 2, cap)  # the margin for queries from outside the collection
    else:
        log.warning(
            "the index reaches recall@%d %.3f at most (nprobe capped at %d of %d lists): these vectors are "
            "hard to partition; an exact index (--index-factory Flat) is slower but exact",
            k, recall, nprobe, nlist,
        )
    return nprobe, recall


def calibrate_candidates(faiss, index, vectors: np.ndarray, search, default: int, nprobe: int, *, seed: int = 7,
                         newest: int = 0, calibration=None) -> tuple[int, int, float]:
    """(nprobe, candidates, recall@50) for an index whose calibrated ``nprobe`` (set on it) is short
    of ``RECALL_TARGET``.

    When a query scans hundreds of thousands of 4-bit codes, the coarse codes' ranking noise
    pushes true neighbours out of the default ``default`` candidates even though their lists were
    probed (diffuse data at 300,000 vectors: recall@50 0.832 with 400 candidates, 0.872 with
    1,000, at a quarter of the lists). Re-ranking more candidates from the exact vectors costs
    about a microsecond each, far less than probing more lists; ``WIDER_CANDIDATES`` multiples of
    the default are tried and the smallest reaching the target, else the best by 0.01 or more, is
    kept (0: the default). Where the target is reached, nprobe then steps down (¾, ½) while recall
    stays ``STEP_DOWN_MARGIN`` above the target: the margin stands in for the doubling
    ``calibrate_nprobe`` adds for queries from outside the collection.
    """
    queries, sample, truth, k = calibration or calibration_set(faiss, vectors, seed, newest)
    best, best_recall = 0, _measured_recall(index, vectors, search, queries, sample, truth, k)
    for factor in WIDER_CANDIDATES:
        wanted = int(default * factor)
        recall = _measured_recall(index, vectors, search, queries, sample, truth, k, candidates=wanted)
        log.info("%d re-ranking candidates: recall@%d %.3f", wanted, k, recall)
        if recall >= best_recall + 0.01:
            best, best_recall = wanted, recall
        if recall >= RECALL_TARGET:
            break
    space = faiss.ParameterSpace()
    if best and best_recall >= RECALL_TARGET + STEP_DOWN_MARGIN:
        for trial in (nprobe * 3 // 4, nprobe // 2):
            space.set_index_parameter(index, "nprobe", trial)
            recall = _measured_recall(index, vectors, search, queries, sample, truth, k, candidates=best)
            log.info("nprobe %d with %d candidates: recall@%d %.3f", trial, best, k, recall)
            if recall < RECALL_TARGET + STEP_DOWN_MARGIN:
                break
            nprobe, best_recall = trial, recall
    space.set_index_parameter(index, "nprobe", nprobe)
    return nprobe, best, best_recall


def widen_candidates(faiss, index, vectors: np.ndarray, search, default: int, *, calibration) -> tuple[int, float]:
    """(candidates, recall@50) at the nprobe set on ``index``, for an index whose nprobe calibration
    reached the target: ``WIDER_CANDIDATES[0]`` × the default candidates are kept when they gain
    ``CANDIDATE_GAIN`` or more (0: the default).

    Why even then: in big collections one kind of drawing is a group of thousands of near
    neighbours, and the 4-bit codes cannot order them; the lists are probed but the true top 50
    fall out of the default candidates. At 10^7 clustered vectors (groups of 1,000) stored
    queries reached 0.951 at nprobe 16, fresh queries got 0.930 at the nprobe 32 kept, and 1,000
    candidates instead of 400 gave them 0.949 — more lists gave +0.007 (docs/index-scale.md).
    """
    queries, sample, truth, k = calibration
    base = _measured_recall(index, vectors, search, queries, sample, truth, k)
    wanted = int(default * WIDER_CANDIDATES[0])
    wider = _measured_recall(index, vectors, search, queries, sample, truth, k, candidates=wanted)
    log.info("re-ranking candidates at the calibrated nprobe: %d -> recall@%d %.3f, %d -> %.3f", default, k, base,
             wanted, wider)
    if wider >= base + CANDIDATE_GAIN:
        return wanted, wider
    return 0, base
