"""How many inverted lists an IVF index probes, and how many candidates it re-ranks: measured on
the collection's own vectors, as new queries would see it.

How much of an IVF index a query has to visit for a given recall depends on the data: on
well-clustered embeddings a few lists suffice, on diffuse ones many more; and where one kind of
drawing is a group of thousands of near neighbours, the 4-bit codes cannot order the group and
more candidates must be re-ranked with the exact vectors. Rather than guess, a build takes
``CALIBRATION_QUERIES`` stored vectors as queries, finds their exact neighbours by brute force,
and measures recall@50 of the re-ranked search on a ladder of settings (``calibrate``).

The queries stand in for new drawings, so they are chosen to behave like them:

- **held out of training**: only vectors outside the training sample of the coarse centroids and
  codes are drawn (a training vector has a centroid fitted to it: at 10^5 clustered vectors, with
  41 % of them in the sample, training vectors as queries promised 0.376 at nprobe 8 where
  fresh queries got 0.343 and held-out ones 0.349);
- **left out of their own results**: a query is in the index, so it asks for one more hit and
  its own position is dropped from both the found and the true neighbours.

A query drawn so is, for the index, a new draw from the collection's distribution (measured at
10^5 clustered vectors, 1,000 queries each: held-out 0.970 / fresh 0.971 at nprobe 512, 0.931 /
0.930 at 256 with 1,000 candidates; docs/index-scale.md). The promise is therefore made with a
statistical margin, not a doubling: a setting is accepted when the calibration queries' mean
recall reaches ``RECALL_TARGET`` plus ``MARGIN_SE`` standard errors of that mean (at least
``MIN_MARGIN``). Of the settings that do, the cheapest is kept: ``nprobe`` times the vectors
per list plus ``CANDIDATE_COST_CODES`` per re-ranked candidate (a candidate's float16 row read
and scored costs about as much CPU as 64 scanned 4-bit codes). The ladder is capped so that a
query scans at most ``MAX_SCANNED_CODES`` codes and half of the lists (at 10^6 × 256, 500,000
codes took p50 16 ms / p95 31 ms on this 2-core machine under a load of 12-15), and candidates
go up to 50× the default (``WIDER_CANDIDATES``) as long as a setting costs at most
``MAX_QUERY_COST``. Where no setting reaches the bar, the largest nprobe is kept with the
default candidates, or a wider count (at the largest nprobe its cost allows) where that gains
``CANDIDATE_GAIN`` or more. The recall reached, the margin and the candidates are kept in the
manifest, so ``figsearch index`` and ``info`` can say them; searches fetch the calibrated
candidates and re-score them from the memory-mapped float16 vectors (no more RAM).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

RECALL_TARGET = 0.95
CALIBRATION_K = 50
#: 400 queries: the standard error of their mean recall@50 near 0.95 is ~0.004
CALIBRATION_QUERIES = 400
#: a setting is accepted when the queries' mean recall is this many standard errors above the target
MARGIN_SE = 2.0
MIN_MARGIN = 0.005
#: brute-force neighbours are computed over this many stored vectors at a time
EXACT_CHUNK = 100_000
#: the most codes a query scans (nprobe × vectors per list); 500,000 until stop 17, when the 10^7
#: diffuse set, its HNSW lists found, needed about an eighth of its lists (docs/index-scale.md)
MAX_SCANNED_CODES = 1_000_000
#: multiples of the default re-ranking candidates on the ladder (400 for k = 50: 1,000 … 20,000).
#: The wide ones are for data whose k nearest are a far tail (10^7 diffuse vectors: thousands of
#: vectors within the 4-bit codes' error of the 50th neighbour), re-ranked from the memory-mapped file
WIDER_CANDIDATES = (2.5, 5, 12.5, 25, 50)
#: no setting costs more than this many code-equivalents a query (scanned codes plus
#: ``CANDIDATE_COST_CODES`` per candidate): ~15 ms of one core of this machine
MAX_QUERY_COST = 1_500_000
#: one re-ranked candidate costs about as much CPU as this many scanned 4-bit codes (float16 row read, scored)
CANDIDATE_COST_CODES = 64
#: where no setting reaches the bar, wider candidates are kept when they gain this much recall
CANDIDATE_GAIN = 0.01


#: an HNSW coarse quantizer (``IVF…_HNSW32``) searches ``HNSW_EF_FACTOR`` × nprobe candidates (at least
#: ``HNSW_MIN_EF``) for a query's lists. FAISS's default, 16 whatever nprobe, found 34-53 % of the true
#: top-nprobe lists of 4,096 (diffuse vectors, nprobe 64-512) and capped the 10^7 diffuse index's
#: recall@50 at 0.37; 2 × nprobe finds 99.5-100 % for ~1 ms (docs/index-scale.md)
HNSW_EF_FACTOR = 2
HNSW_MIN_EF = 256
#: ... and at most this many (at 4,096 lists, efSearch = nprobe already found 97-99 % of the lists)
HNSW_MAX_EF = 2048


def set_nprobe(faiss, index, nprobe: int) -> None:
    """Probe ``nprobe`` lists of an IVF index; with an HNSW coarse quantizer, search it wide enough to find them."""
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", nprobe)
    try:
        quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    except (RuntimeError, AttributeError):
        return
    if isinstance(quantizer, faiss.IndexHNSW):
        quantizer.hnsw.efSearch = max(HNSW_MIN_EF, min(HNSW_MAX_EF, HNSW_EF_FACTOR * nprobe), nprobe)


def exact_neighbours(faiss, vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best inner products, best first, streaming over the (memory-mapped) vectors.

    Each chunk is scored with numpy's matrix product and its k best picked by ``argpartition``:
    measured at 100,000 × 256 with 400 queries, 0.7 CPU s against 3.7 s for ``faiss.knn`` (the
    FAISS wheel here is the generic build; numpy's BLAS has kernels for this CPU). At 10^7 vectors
    that scan was most of the calibration's time."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(vectors), EXACT_CHUNK):
        chunk = np.ascontiguousarray(vectors[start : start + EXACT_CHUNK], dtype=np.float32)
        scores = queries @ chunk.T
        take = min(k, len(chunk))
        ids = np.argpartition(scores, len(chunk) - take, axis=1)[:, len(chunk) - take :]
        scores = np.take_along_axis(scores, ids, axis=1)
        best_scores = np.hstack([best_scores, scores])
        best_ids = np.hstack([best_ids, ids + start])
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return best_ids


def calibration_set(faiss, vectors: np.ndarray, seed: int = 7, newest: int = 0, exclude: np.ndarray | None = None,
                    size: int | None = None):
    """(queries, their own positions or -1, exact neighbours with one extra, k): computed once and
    passed to the calibration (the exact neighbours are a scan of all vectors).

    ``exclude``: positions not to draw queries from — the training sample, whose vectors are kinder
    queries than new ones (used when at least as many other positions remain).
    ``newest``: the last ``newest`` vectors were appended after the lists were trained; half of the
    queries come from them, and every query is moved off its vector (below)."""
    n = len(vectors)
    k = min(CALIBRATION_K, n - 1)
    rng = np.random.default_rng(seed)
    size = min(size or CALIBRATION_QUERIES, n)
    if 0 < newest < n:
        recent = min(size // 2, newest)
        sample = np.concatenate([
            rng.choice(n - newest, size=size - recent, replace=False),
            n - newest + rng.choice(newest, size=recent, replace=False),
        ])
        sample = np.sort(sample)
    else:
        pool = np.arange(n)
        if exclude is not None and len(exclude):
            held_out = np.setdiff1d(pool, exclude, assume_unique=True)
            if len(held_out) >= size:
                pool = held_out
        sample = np.sort(rng.choice(pool, size=size, replace=False))
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


def _recalls(index, vectors, search, queries, sample, truth, k: int, **options) -> np.ndarray:
    """Recall@k of each query; a query's own position (``sample``) is left out of both sides, and a
    query not in the index (-1) is compared with its k nearest, not the k + 1 computed."""
    out = np.empty(len(sample))
    for i, (row, own, expected) in enumerate(zip(queries, sample, truth)):
        got = [p for p in search(index, vectors, row, k + 1, **options) if p != own][:k]
        wanted = [p for p in expected.tolist() if p != own][:k]
        out[i] = len(set(got) & set(wanted)) / k
    return out


def _measured_recall(index, vectors, search, queries, sample, truth, k: int, **options) -> float:
    return float(_recalls(index, vectors, search, queries, sample, truth, k, **options).mean())


@dataclass(frozen=True)
class Calibration:
    nprobe: int
    #: re-ranking candidates (0: the default ``max(8k, 200)``)
    candidates: int
    #: mean recall@50 of the calibration queries at these settings
    recall: float
    #: the bar's margin over ``RECALL_TARGET`` at these settings (``MARGIN_SE`` standard errors)
    margin: float
    #: whether recall reached ``RECALL_TARGET + margin``
    reached: bool


def nprobe_cap(n: int, nlist: int) -> int:
    return max(min(nlist, 32), min(nlist // 2, MAX_SCANNED_CODES * nlist // max(n, 1)))


def candidate_levels(default: int, n: int, per_list: float) -> tuple[int, ...]:
    """The re-ranking candidates tried: the default (0) and the ``WIDER_CANDIDATES`` multiples that fit
    ``MAX_QUERY_COST`` with 8 lists probed and are fewer than the vectors."""
    wider = [int(default * f) for f in WIDER_CANDIDATES]
    return (0, *(c for c in wider if c < n and CANDIDATE_COST_CODES * c + 8 * per_list <= MAX_QUERY_COST))


def nprobe_ladder(cap: int) -> list[int]:
    """8, 12, 16, 24, 32, 48, … (steps of ~1.4×) up to and including ``cap``."""
    steps, base = [], 8
    while base < cap:
        steps += [base, base * 3 // 2]
        base *= 2
    return sorted({s for s in steps if s < cap} | {cap})


def calibrate(faiss, index, vectors: np.ndarray, nlist: int, search, default: int, *, calibration,
              levels: tuple[int, ...] | None = None, max_nprobe: int | None = None) -> Calibration:
    """The cheapest (nprobe, candidates) whose recall@50 on ``calibration`` reaches the bar, set on ``index``.

    ``search(index, vectors, query, k, candidates=None)`` is the re-ranking search the service
    uses, returning positions best first; ``default`` its default candidates for k = 50.
    ``levels``: the candidate counts tried (0: the default); by default the default and
    ``WIDER_CANDIDATES`` multiples of it. ``max_nprobe``: the ladder stops there even below its cap
    (an append's re-calibration, which would retrain rather than probe more). For each, the ladder is climbed to the first nprobe that
    reaches the bar, or until a setting would cost more than one already accepted (not bisected:
    with the default candidates, recall can fall as nprobe grows, the codes' ranking noise
    outgrowing what more lists bring).
    """
    queries, sample, truth, k = calibration
    n = len(vectors)
    cap = nprobe_cap(n, nlist)
    if max_nprobe:
        cap = max(1, min(cap, max_nprobe))
    ladder = nprobe_ladder(cap)
    per_list = n / max(nlist, 1)
    levels = levels if levels is not None else candidate_levels(default, n, per_list)
    measured: dict[tuple[int, int], tuple[float, float]] = {}

    def measure(nprobe: int, level: int) -> tuple[float, float]:
        if (nprobe, level) not in measured:
            set_nprobe(faiss, index, nprobe)
            options = {"candidates": level} if level else {}  # else what ``search`` fetches by itself
            recalls = _recalls(index, vectors, search, queries, sample, truth, k, **options)
            margin = max(MIN_MARGIN, MARGIN_SE * float(recalls.std()) / float(np.sqrt(len(recalls))))
            measured[nprobe, level] = (float(recalls.mean()), margin)
            log.info("nprobe %d of %d lists, %d candidates: recall@%d %.3f (bar %.3f)", nprobe, nlist,
                     level or default, k, recalls.mean(), RECALL_TARGET + margin)
        return measured[nprobe, level]

    def cost(nprobe: int, level: int) -> float:
        return nprobe * per_list + CANDIDATE_COST_CODES * (level or default)

    best: tuple[int, int] | None = None
    for level in levels:
        for nprobe in ladder:
            if best is not None and cost(nprobe, level) >= cost(*best):
                break
            if level and cost(nprobe, level) > MAX_QUERY_COST:
                break
            recall, margin = measure(nprobe, level)
            if recall >= RECALL_TARGET + margin:
                best = (nprobe, level)
                break
    if best is not None:
        nprobe, level = best
        recall, margin = measured[best]
        reached = True
    else:
        # nothing reaches the bar: the most lists allowed, and the candidates that gain enough
        nprobe, level = cap, levels[0]
        for wider in levels[1:]:
            top = max([p for p in ladder if cost(p, wider) <= MAX_QUERY_COST], default=0)
            if top and measure(top, wider)[0] >= measure(nprobe, level)[0] + CANDIDATE_GAIN:
                nprobe, level = top, wider
        recall, margin = measure(nprobe, level)
        reached = False
        (log.info if max_nprobe else log.warning)(  # an append's caller retrains rather than warns
            "the index reaches recall@%d %.3f at most (nprobe capped at %d of %d lists, %d candidates): these "
            "vectors are hard to partition; an exact index (--index-factory Flat) is slower but exact",
            k, recall, nprobe, nlist, level or default,
        )
    set_nprobe(faiss, index, nprobe)
    return Calibration(nprobe, level, recall, margin, reached)


def calibrate_nprobe(faiss, index, vectors: np.ndarray, nlist: int, search, *, seed: int = 7,
                     newest: int = 0, calibration=None, max_nprobe: int | None = None) -> tuple[int, float]:
    """(nprobe, recall@50 it reached) for ``index`` with the candidates ``search`` already fetches
    (what an append re-calibrates: the build chose the candidates).

    ``newest``: the last ``newest`` vectors were appended after the lists were trained; half of
    the queries come from them, because vectors unlike the training sample (a new kind of
    drawing) are where an old partition loses recall first. ``max_nprobe``: as for ``calibrate``.
    """
    result = calibrate(faiss, index, vectors, nlist, search, 0,
                       calibration=calibration or calibration_set(faiss, vectors, seed, newest), levels=(0,),
                       max_nprobe=max_nprobe)
    return result.nprobe, result.recall
