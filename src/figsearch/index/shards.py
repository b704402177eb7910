"""Adding vectors to a trained IVF index in shards, in parallel processes, merged in a fixed order.

At 10^6 vectors and more, adding is what a build spends its time on: every vector is assigned to
its nearest coarse centroid (a product with all ``nlist`` centroids) and encoded. Both are
independent per vector, so a build cuts the positions into contiguous shards; a worker process
reads the trained, empty index from a file, adds its shard's vectors (memory-mapped from the
vectors file the build already wrote) with their positions as ids, and writes the filled index
to a shard file; the driver merges the shard files in position order (``IndexIVF.merge_from``).
Every inverted list then holds the same entries in the same order as after one sequential
``add``, so the merged index answers exactly like the index one process would have built
(tests/test_index_scale.py), only sooner. Training stays in the driver, on a sample
(``IndexPlan.train_size``): k-means needs the whole sample at once, and its cost is bounded by
the sample, not by ``n``.

``map_shards`` is ``map``'s signature, so another executor (a cluster's, with the index
directory on a shared file system) can run the same tasks; the default is a process pool of
``FIGSEARCH_INDEX_WORKERS`` processes (default 1: no pool, one sequential add, as before).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from figsearch.errors import CollectionError
from figsearch.extras import require

log = logging.getLogger(__name__)

#: vectors added to FAISS per call (bounds the memory of a build or of one shard worker)
ADD_CHUNK = 50_000
#: below this many vectors a build adds in its own process: starting workers costs more than it saves
SHARD_MIN = 200_000
#: at most this many vectors per shard file (more shards than workers balance uneven workers)
SHARD_MAX = 2_000_000

MapShards = Callable[[Callable, Iterable], Iterable]


@dataclass(frozen=True)
class ShardTask:
    """Add vectors ``start:stop`` of the vectors file to a copy of the trained index at ``trained``."""

    trained: str
    vectors: str
    dtype: str
    count: int
    dim: int
    start: int
    stop: int
    out: str


def index_workers() -> int:
    return max(1, int(os.environ.get("FIGSEARCH_INDEX_WORKERS", "1")))


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, nearly equal position ranges covering 0..n."""
    shards = max(1, min(shards, n))
    bounds = [n * i // shards for i in range(shards + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _add_range(index, vectors: np.ndarray, start: int, stop: int, with_ids: bool) -> None:
    for begin in range(start, stop, ADD_CHUNK):
        end = min(begin + ADD_CHUNK, stop)
        chunk = np.ascontiguousarray(vectors[begin:end], dtype=np.float32)
        if with_ids:
            index.add_with_ids(chunk, np.arange(begin, end, dtype=np.int64))
        else:
            index.add(chunk)


def encode_shard(task: ShardTask) -> str:
    """Worker side: fill a copy of the trained index with one shard's vectors; returns the shard file."""
    faiss = require("faiss", "vector indexes")
    faiss.omp_set_num_threads(1)  # one process per core does the parallel work
    index = faiss.read_index(task.trained)
    vectors = np.memmap(task.vectors, dtype=task.dtype, mode="r", shape=(task.count, task.dim))
    _add_range(index, vectors, task.start, task.stop, with_ids=True)
    faiss.write_index(index, task.out)
    return task.out


def _process_map(workers: int) -> tuple[MapShards, Callable[[], None]]:
    # spawn, not fork: a forked child inherits FAISS's OpenMP state and can hang in it
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    return pool.map, lambda: pool.shutdown(cancel_futures=True)


def add_vectors(faiss, index, vectors_path: Path, dtype: str, n: int, dim: int, *, workers: int | None = None,
                map_shards: MapShards | None = None, scratch: Path | None = None) -> None:
    """Add the ``n`` vectors of ``vectors_path`` to the trained ``index``, position i as id i.

    In shards when the index is an IVF index, there are enough vectors, and more than one worker
    (or a ``map_shards``) is given; otherwise in this process, chunk by chunk.
    """
    workers = index_workers() if workers is None else max(1, workers)
    vectors = np.memmap(vectors_path, dtype=dtype, mode="r", shape=(n, dim)) if n else np.zeros((0, dim), dtype)
    shardable = isinstance(index, faiss.IndexIVF) and index.ntotal == 0 and n >= SHARD_MIN
    if not shardable or (workers == 1 and map_shards is None):
        _add_range(index, vectors, 0, n, with_ids=False)
        return
    scratch = Path(scratch or Path(vectors_path).parent)
    tag = f"{os.getpid()}.{id(index):x}"
    trained = scratch / f".shard-{tag}.trained.faiss"
    faiss.write_index(index, str(trained))
    ranges = shard_ranges(n, max(workers, math.ceil(n / SHARD_MAX)))
    tasks = [ShardTask(str(trained), str(vectors_path), dtype, n, dim, a, b, str(scratch / f".shard-{tag}.{i}.faiss"))
             for i, (a, b) in enumerate(ranges)]
    log.info("adding %d vectors in %d shards with %s", n, len(tasks),
             f"{workers} worker processes" if map_shards is None else "the given executor")
    close = None
    if map_shards is None:
        map_shards, close = _process_map(workers)
    try:
        # map returns in task order: merging in that order keeps positions in sequence in every list
        for path in map_shards(encode_shard, tasks):
            shard = faiss.read_index(path)
            index.merge_from(shard, 0)
            del shard
            Path(path).unlink()
    finally:
        if close is not None:
            close()
        for task in tasks:
            Path(task.out).unlink(missing_ok=True)
        trained.unlink(missing_ok=True)
    if index.ntotal != n:
        raise CollectionError(f"sharded add produced {index.ntotal} vectors, expected {n}")
