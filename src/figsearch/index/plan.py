"""Which FAISS index a modality gets, chosen by collection size and a memory budget.

- Up to ``EXACT_MAX`` vectors: ``Flat`` (exact inner product; vectors are L2-normalised, so
  this is cosine). A flat scan of 50k × 512 floats takes ~10 ms on two cores.
- Above: ``IVF{nlist},PQ{m}x4fs`` — an inverted file over ~4·√n lists, each vector compressed to
  ``m`` 4-bit codes — whose candidates are re-ranked with the exact vectors, which stay on disk
  (memory-mapped) rather than in memory. In memory a vector then costs its ``m/2`` code bytes,
  the 8-byte id of the inverted list, and a share of the coarse centroids: ``m`` is one code per
  four dimensions, or fewer where that would exceed the budget (150 bytes per vector by default).
  How many lists a query probes (``nprobe``) is calibrated on the collection's own vectors when
  the index is built (figsearch.index.calibrate).

From ``HNSW_NLIST_MIN`` lists on (about 3·10^6 vectors), the coarse quantizer is an HNSW graph over
the centroids (``IVF{nlist}_HNSW32,...``) and the centroids are trained by two-level k-means
(figsearch.index.modality): k-means on a 10^7 index's 655,360-vector sample costs sample × lists ×
iterations, which dominated its build on this machine. A query's lists come from the graph where its
search is cheaper than scanning all the centroids, else from that scan
(figsearch.index.modality.search_index; the wide searches the 10^7 calibration needs scan). Added vectors still go to their nearest centroid by a flat scan
(figsearch.index.shards.assigning; batched, it costs about what FAISS's narrow graph search did).

Any FAISS index-factory string overrides the choice; non-flat ones are re-ranked the same way.

From ``HALF_PRECISION_MIN`` vectors on, the exact vectors kept for re-ranking are stored as
float16: half the disk and half the page cache a server needs to re-rank without disk reads
(10^7 × 256 dims: 5 GB instead of 10 GB). Re-ranking only orders a few hundred candidates, and
float16's ~1e-3 relative error per component moves a cosine by well under the gaps between
neighbours that matter (tests/test_index_scale.py checks the top-k against float32); smaller
collections keep float32, so their scores stay the exact cosines.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

EXACT_MAX = 50_000
DEFAULT_BYTES_PER_VECTOR = 150
#: candidates fetched from an approximate index per requested hit, re-ranked exactly
RERANK_FACTOR = 8
MIN_CANDIDATES = 200
#: from this many vectors on, the re-ranking vectors are kept as float16 on disk
HALF_PRECISION_MIN = 1_000_000
#: from this many inverted lists on, the coarse quantizer is an HNSW graph, and k-means trains in two levels
HNSW_NLIST_MIN = 8192
_PQ_SIZES = (256, 192, 128, 96, 64, 48, 32, 24, 16, 8, 4)


@dataclass(frozen=True)
class IndexPlan:
    factory: str
    #: exact vectors are kept on disk and used to re-rank the approximate candidates
    rerank: bool
    #: the plan came from the size rule (and is re-chosen as the collection grows)
    auto: bool
    nprobe: int = 0
    #: vectors sampled to train an IVF/PQ index
    train_size: int = 0
    #: numpy dtype of the re-ranking vectors on disk: "<f4", or "<f2" for big collections
    vector_dtype: str = "<f4"

    @property
    def exact(self) -> bool:
        return not self.rerank

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> IndexPlan:
        return cls(**{k: data[k] for k in ("factory", "rerank", "auto", "nprobe", "train_size", "vector_dtype")
                    if k in data})


def _nlist(n: int) -> int:
    # a power of two near 4·sqrt(n): re-chosen (and rebuilt) only when the size changes ~4-fold
    return max(64, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))


def _pq_subquantizers(dim: int, n: int, nlist: int, budget: float) -> int:
    """4-bit sub-quantizers (half a byte each): one per four dimensions, fewer where that
    would exceed the memory budget. Candidates are re-ranked exactly, so coarse codes suffice."""
    overhead = 8 + nlist * dim * 4 / max(n, 1)  # inverted-list id + this vector's share of the centroids
    for m in _PQ_SIZES:
        if dim % m == 0 and m <= max(dim // 4, 4) and m / 2 + overhead <= budget:
            return m
    return min((m for m in _PQ_SIZES if dim % m == 0), default=dim)


def choose_plan(n: int, dim: int, bytes_per_vector: float = DEFAULT_BYTES_PER_VECTOR, factory: str | None = None) -> IndexPlan:
    """The index for ``n`` vectors of ``dim`` dimensions (``factory`` overrides the rule)."""
    if factory:
        flat = factory.replace(" ", "") in ("Flat", "IDMap,Flat")
        nlist = _factory_nlist(factory)
        return IndexPlan(
            factory=factory,
            rerank=not flat,
            auto=False,
            nprobe=min(64, nlist) if nlist else 0,
            train_size=min(n, max(nlist * 40, 20_000)) if not flat else 0,
            vector_dtype=_vector_dtype(n) if not flat else "<f4",
        )
    if n <= EXACT_MAX or dim * 4 <= bytes_per_vector:
        return IndexPlan("Flat", rerank=False, auto=True)
    nlist = _nlist(n)
    m = _pq_subquantizers(dim, n, nlist, bytes_per_vector)
    # "x4fs": 4-bit codes scanned with SIMD ("fast scan"), several times faster per probed list
    # than 8-bit PQ; recall comes from probing enough lists (calibrated at build time) and
    # from re-ranking, not from finer codes.
    coarse = f"IVF{nlist}_HNSW32" if nlist >= HNSW_NLIST_MIN else f"IVF{nlist}"
    return IndexPlan(
        f"{coarse},PQ{m}x4fs", rerank=True, auto=True, nprobe=min(64, nlist // 8), train_size=min(n, nlist * 40),
        vector_dtype=_vector_dtype(n),
    )


def _vector_dtype(n: int) -> str:
    return "<f2" if n >= HALF_PRECISION_MIN else "<f4"


def _factory_nlist(factory: str) -> int:
    match = re.search(r"(?:^|,)\s*IVF(\d+)", factory)
    return int(match.group(1)) if match else 0
