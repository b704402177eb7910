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

``map_shards`` is ``map``'s signature, so another executor can run the same tasks; the default is
a process pool of ``FIGSEARCH_INDEX_WORKERS`` processes (default 1: no pool, one sequential add, as
before). A ``ShardExecutor`` names one with its worker count: the Ray build's runs each shard on one
of the build's workers, sending the trained index and the shard's vectors through Ray's object store
(``fill_shard``), so a cluster's workers need not see the collection's directory.

``resume``: a directory where finished shard files are kept (``shard-{start}-{stop}.faiss``,
each written under a temporary name and renamed); a rerun with the same trained index and
vectors file adds only the shards that are missing, then merges all of them. Every shard is
logged as it is merged, with its wall and CPU time and its worker's peak memory.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
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

#: how added vectors find their list (recorded in the manifest entry as ``assignment``): the nearest
#: centroid by a flat scan of all of them. With an HNSW coarse quantizer FAISS would search its graph
#: with ``efSearch`` 16 (its default), which at 10^7 diffuse vectors (16,384 lists) put 55 % of the
#: sampled neighbours in their nearest list (efSearch 64: 86 %, 128: 95 %, 256: 99 %) and left the
#: index 0.017 short of its partition recall; the flat scan costs about as much CPU as efSearch 16
#: there (144 against 128 µs a vector, FAISS's matrix product) and 2.4-9× less than 64-256
#: (docs/index-scale.md, stop 18). A flat quantizer always assigns so.
EXACT = "exact"
#: what indexes built before the rule was recorded did (FAISS's default graph search)
LEGACY_ASSIGNMENT = "hnsw-ef16"


@contextmanager
def assigning(faiss, index, rule: str = EXACT) -> Iterator[None]:
    """Within the block, ``index.add`` puts each vector in a list by ``rule``: ``"exact"`` (nearest
    centroid, a flat scan) or ``"hnsw-ef{N}"`` (an HNSW quantizer's graph searched with efSearch N).

    Only an HNSW coarse quantizer is affected: for the exact rule a flat index of its centroids
    stands in for it while adding, and the graph is put back afterwards (what the index file keeps
    and searches use)."""
    try:
        ivf = faiss.extract_index_ivf(index)
        quantizer = faiss.downcast_index(ivf.quantizer)
    except (RuntimeError, AttributeError):
        yield
        return
    if not isinstance(quantizer, faiss.IndexHNSW):
        yield
        return
    if rule == EXACT:
        graph = ivf.quantizer
        flat = faiss.IndexFlat(quantizer.d, quantizer.metric_type)
        flat.add(quantizer.reconstruct_n(0, quantizer.ntotal))
        ivf.quantizer = flat
        try:
            yield
        finally:
            ivf.quantizer = graph
            del flat
        return
    if not rule.startswith("hnsw-ef"):
        raise CollectionError(f"unknown assignment rule {rule!r}")
    before = quantizer.hnsw.efSearch
    quantizer.hnsw.efSearch = int(rule[len("hnsw-ef"):])
    try:
        yield
    finally:
        quantizer.hnsw.efSearch = before


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
    #: how the vectors find their lists (``assigning``)
    assignment: str = EXACT


@dataclass(frozen=True)
class ShardExecutor:
    """Where a build adds its shards: ``map`` (``map``'s signature, results in task order) with
    ``workers`` running at once; the build cuts at least that many shards."""

    workers: int
    map: MapShards


def index_workers() -> int:
    return max(1, int(os.environ.get("FIGSEARCH_INDEX_WORKERS", "1")))


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous, nearly equal position ranges covering 0..n."""
    shards = max(1, min(shards, n))
    bounds = [n * i // shards for i in range(shards + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _add_range(index, vectors: np.ndarray, start: int, stop: int, with_ids: bool, first_id: int = 0) -> None:
    """Add rows ``start:stop`` of ``vectors``; with ids, row i gets id ``first_id + i``."""
    for begin in range(start, stop, ADD_CHUNK):
        end = min(begin + ADD_CHUNK, stop)
        chunk = np.ascontiguousarray(vectors[begin:end], dtype=np.float32)
        if with_ids:
            index.add_with_ids(chunk, np.arange(first_id + begin, first_id + end, dtype=np.int64))
        else:
            index.add(chunk)


@dataclass(frozen=True)
class ShardDone:
    """A written shard file and what adding it cost (``seconds`` 0 for a shard kept from an earlier run)."""

    out: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    #: peak resident memory of the process that added it (a pool worker: over all its shards so far)
    peak_rss: int = 0
    pid: int = 0


def encode_shard(task: ShardTask) -> ShardDone:
    """Worker side: fill a copy of the trained index with one shard's vectors and write the shard file."""
    if Path(task.out).exists():  # finished by an earlier, interrupted run (files are renamed into place)
        return ShardDone(task.out)
    start, cpu = time.perf_counter(), time.process_time()
    faiss = require("faiss", "vector indexes")
    faiss.omp_set_num_threads(1)  # one process per core does the parallel work
    index = faiss.read_index(task.trained)
    vectors = np.memmap(task.vectors, dtype=task.dtype, mode="r", shape=(task.count, task.dim))
    with assigning(faiss, index, task.assignment):
        _add_range(index, vectors, task.start, task.stop, with_ids=True)
    tmp = f"{task.out}.{os.getpid()}.tmp"
    faiss.write_index(index, tmp)
    os.replace(tmp, task.out)
    return ShardDone(task.out, time.perf_counter() - start, time.process_time() - cpu,
                     resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, os.getpid())


def fill_shard(trained: bytes, vectors: np.ndarray, start: int, assignment: str = EXACT) -> tuple[bytes, ShardDone]:
    """``encode_shard`` without files, for workers that do not see the index directory (a cluster's):
    the trained index serialized, the shard's vectors in memory (the vectors at positions ``start``
    on); returns the filled shard index serialized and what adding it cost (``ShardDone.out`` empty)."""
    begin, cpu = time.perf_counter(), time.process_time()
    faiss = require("faiss", "vector indexes")
    faiss.omp_set_num_threads(1)  # one worker per core does the parallel work
    index = faiss.deserialize_index(np.frombuffer(trained, dtype=np.uint8))
    with assigning(faiss, index, assignment):
        _add_range(index, vectors, 0, len(vectors), with_ids=True, first_id=start)
    payload = faiss.serialize_index(index).tobytes()
    return payload, ShardDone("", time.perf_counter() - begin, time.process_time() - cpu,
                              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, os.getpid())


def _process_map(workers: int) -> tuple[MapShards, Callable[[], None]]:
    # spawn, not fork: a forked child inherits FAISS's OpenMP state and can hang in it
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    return pool.map, lambda: pool.shutdown(cancel_futures=True)


def add_vectors(faiss, index, vectors_path: Path, dtype: str, n: int, dim: int, *, workers: int | None = None,
                map_shards: MapShards | None = None, scratch: Path | None = None, resume: Path | None = None,
                assignment: str = EXACT) -> None:
    """Add the ``n`` vectors of ``vectors_path`` to the trained ``index``, position i as id i.

    In shards when the index is an IVF index, there are enough vectors, and more than one worker
    (or a ``map_shards``, or a ``resume`` directory) is given; otherwise in this process, chunk by
    chunk. With ``resume`` the shard files stay there after the merge (the caller removes the
    directory once the index is published), and shards found there are not added again: the
    caller guarantees they were cut from the same trained index and vectors file (and rule).
    ``assignment``: how the vectors find their lists (``assigning``), in this process or the workers.
    """
    workers = index_workers() if workers is None else max(1, workers)
    vectors = np.memmap(vectors_path, dtype=dtype, mode="r", shape=(n, dim)) if n else np.zeros((0, dim), dtype)
    shardable = isinstance(index, faiss.IndexIVF) and index.ntotal == 0 and n >= SHARD_MIN
    if not shardable or (workers == 1 and map_shards is None and resume is None):
        with assigning(faiss, index, assignment):
            _add_range(index, vectors, 0, n, with_ids=False)
        return
    if resume is not None:
        scratch, prefix = Path(resume), "shard-"
        trained = scratch / "shards.trained.faiss"
        if not trained.exists():
            _write_atomically(faiss, index, trained)
    else:
        scratch = Path(scratch or Path(vectors_path).parent)
        prefix = f".shard-{os.getpid()}.{id(index):x}."
        trained = scratch / f"{prefix}trained.faiss"
        faiss.write_index(index, str(trained))
    ranges = shard_ranges(n, max(workers, math.ceil(n / SHARD_MAX)))
    tasks = [ShardTask(str(trained), str(vectors_path), dtype, n, dim, a, b, str(scratch / f"{prefix}{a}-{b}.faiss"),
                       assignment) for a, b in ranges]
    kept = sum(Path(t.out).exists() for t in tasks)
    log.info("adding %d vectors in %d shards with %s%s", n, len(tasks),
             f"{workers} worker process(es)" if map_shards is None else "the given executor",
             f" ({kept} shards kept from an earlier run)" if kept else "")
    close = None
    if map_shards is None:
        if workers == 1 or kept >= len(tasks) - 1:
            map_shards = map  # resumable but in this process: no pool to start
        else:
            map_shards, close = _process_map(workers)
    start = time.perf_counter()
    try:
        # map returns in task order: merging in that order keeps positions in sequence in every list
        for number, (task, done) in enumerate(zip(tasks, map_shards(encode_shard, tasks)), 1):
            if isinstance(done, str):  # an executor's own encode_shard that returns the path only
                done = ShardDone(done)
            if done.seconds:
                log.info("shard %d/%d (vectors %d-%d) added in %.1f s (CPU %.1f s, worker %d peak RSS %.0f MiB); "
                         "%.0f s since the adding started", number, len(tasks), task.start, task.stop, done.seconds,
                         done.cpu_seconds, done.pid, done.peak_rss / 2**20, time.perf_counter() - start)
            else:
                log.info("shard %d/%d (vectors %d-%d) kept from an earlier run", number, len(tasks), task.start,
                         task.stop)
            shard = faiss.read_index(done.out)
            merge_shard(faiss, index, shard)
            del shard
            if resume is None:
                Path(done.out).unlink()
    finally:
        if close is not None:
            close()
        if resume is None:
            for task in tasks:
                Path(task.out).unlink(missing_ok=True)
            trained.unlink(missing_ok=True)
    if index.ntotal != n:
        raise CollectionError(f"sharded add produced {index.ntotal} vectors, expected {n}")


def merge_shard(faiss, index, shard) -> None:
    """``index.merge_from(shard, 0)``, safe for 4-bit fast-scan lists.

    FAISS 1.15's ``BlockInvertedLists::add_entries`` (what ``merge_from`` appends a list with)
    tests ``o % block_size == 0`` — the entries already in the list against the block size in
    *bytes* — and, when it holds for a non-empty list, copies the new blocks as if the list
    were empty, past the end of its buffer: heap corruption (``corrupted size vs. prev_size``,
    an abort, or silently wrong codes), found with a 20,000-vector test whose list sizes hit a
    multiple of 256. Those lists are moved here instead: the list's last entry is taken off and
    put in front of the shard's entries, so FAISS appends from a count that is not a multiple
    and takes its entry-by-entry path; the rest goes through ``merge_from`` as before. Lists
    keep their entries in position order, so the result is still one sequential add's index.
    """
    ivf = faiss.extract_index_ivf(index)
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    if isinstance(lists, faiss.BlockInvertedLists):
        other = faiss.downcast_InvertedLists(faiss.extract_index_ivf(shard).invlists)
        packer = ivf.get_CodePacker()
        moved = 0
        try:
            for number in range(lists.nlist):
                have, extra = lists.list_size(number), other.list_size(number)
                if have and extra and have % lists.block_size == 0:
                    _append_through_packer(faiss, lists, other, packer, number, have, extra)
                    moved += 1
        finally:
            del packer
        if moved:
            log.info("%d inverted list(s) appended entry by entry (their sizes are multiples of %d, where "
                     "FAISS's merge would overrun them)", moved, lists.block_size)
    index.merge_from(shard, 0)


def _unpack_list(faiss, lists, packer, number: int, count: int) -> np.ndarray:
    """The ``count`` first codes of a block-packed list, one row per entry."""
    per_block, size = lists.n_per_block, packer.code_size
    blocks = -(-count // per_block)
    packed = faiss.rev_swig_ptr(lists.get_codes(number), blocks * lists.block_size)
    flat = np.zeros((blocks * per_block, size), np.uint8)
    for b in range(blocks):
        block = np.ascontiguousarray(packed[b * lists.block_size : (b + 1) * lists.block_size])
        packer.unpack_all(faiss.swig_ptr(block), faiss.swig_ptr(flat[b * per_block :]))
    return flat[:count]


def _append_through_packer(faiss, lists, other, packer, number: int, have: int, extra: int) -> None:
    per_block = lists.n_per_block
    last = _unpack_list(faiss, lists, packer, number, have)[-1:]
    moved = np.concatenate([last, _unpack_list(faiss, other, packer, number, extra)])
    ids = np.concatenate([faiss.rev_swig_ptr(lists.get_ids(number), have)[-1:],
                          faiss.rev_swig_ptr(other.get_ids(number), extra)]).astype(np.int64)
    blocks = -(-len(moved) // per_block)
    flat = np.zeros((blocks * per_block, packer.code_size), np.uint8)
    flat[: len(moved)] = moved
    packed = np.zeros(blocks * lists.block_size, np.uint8)
    for b in range(blocks):
        packer.pack_all(faiss.swig_ptr(flat[b * per_block :]), faiss.swig_ptr(packed[b * lists.block_size :]))
    lists.resize(number, have - 1)
    lists.add_entries(number, len(moved), faiss.swig_ptr(ids), faiss.swig_ptr(packed))
    other.resize(number, 0)


def _write_atomically(faiss, index, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
