"""One modality's FAISS index: build, append, open, search (inner product on normalised vectors)."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from figsearch.errors import CollectionError
from figsearch.extras import require
from figsearch.index.calibrate import (
    CALIBRATION_K,
    RECALL_TARGET,
    calibrate,
    calibrate_nprobe,
    calibration_set,
    set_nprobe,
)
from figsearch.index.files import commit, temp_path
from figsearch.index.plan import HNSW_NLIST_MIN, MIN_CANDIDATES, RERANK_FACTOR, IndexPlan
from figsearch.index.shards import EXACT, LEGACY_ASSIGNMENT, MapShards, add_vectors, assigning
from figsearch.fsutil import atomic_write_bytes, utcnow

log = logging.getLogger(__name__)

#: an IVF index is re-calibrated when appends have grown it by this many percent since its last calibration
RECALIBRATE_GROWTH_PERCENT = 10
#: appends that need more than this many times the lists the build probed lead to a retrain (rebuild)
RETRAIN_NPROBE_FACTOR = 4
#: how a build puts vectors in their lists (figsearch.index.shards.assigning), recorded in the manifest
#: entry as ``assignment``; appends add by the rule their entry records, so an index keeps one rule
#: (entries without it were filled by FAISS's HNSW search with efSearch 16: ``hnsw-ef16``)
ADD_ASSIGNMENT = EXACT
Chunks = Iterable[tuple[list[str], np.ndarray, int]]


_threads_set = False


def _faiss():
    """FAISS, with its thread count set once (FIGSEARCH_FAISS_THREADS, default 1).

    FAISS's OpenMP threads and its bundled OpenBLAS spin while they wait for each other; on a
    machine whose cores are busy with other work that turned a one-second IVF-PQ build into
    minutes. One thread is never slower than ~cores× on an idle machine, and searches (one
    query at a time) gain nothing from more; set the variable for big builds on a free machine.
    """
    global _threads_set
    faiss = require("faiss", "vector indexes")
    if not _threads_set:
        faiss.omp_set_num_threads(max(1, int(os.environ.get("FIGSEARCH_FAISS_THREADS", "1"))))
        _threads_set = True
    return faiss


def _id_width(ids: list[str]) -> int:
    longest = max((len(i.encode("utf-8")) for i in ids), default=1)
    return max(32, -(-longest // 16) * 16)  # room for longer ids without a rebuild


def _new_index(plan: IndexPlan, dim: int):
    faiss = _faiss()
    index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    try:
        # index_factory turns on polysemous training for 8-bit IVF-PQ ("PQ32"): it is for Hamming
        # filtering, which figsearch never uses, and it took minutes where the rest took a second
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    except (RuntimeError, AttributeError):
        ivf = None
    if hasattr(ivf, "do_polysemous_training"):
        ivf.do_polysemous_training = False
    return index


def _train(faiss, index, sample: np.ndarray) -> None:
    """Train ``index`` on ``sample``; with many lists, the coarse centroids by two-level k-means.

    Flat k-means costs sample × lists × iterations (at 10^7 vectors, 655,360 × 16,384 × 25: most of
    an hour on one core). Two-level k-means (faiss.contrib.clustering) first clusters the sample
    into √lists groups, then each group into its share of the lists: about √lists times cheaper,
    and the lists come out nearly as balanced.
    """
    ivf = None
    try:
        ivf = faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        pass
    if ivf is not None and ivf.nlist >= HNSW_NLIST_MIN and ivf.quantizer.ntotal == 0:
        from faiss.contrib.clustering import two_level_clustering

        groups = int(np.sqrt(ivf.nlist))
        log.info("two-level k-means: %d groups, %d lists", groups, ivf.nlist)
        centroids, _ = two_level_clustering(sample, groups, int(ivf.nlist), clustering_niter=20)
        ivf.quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        log.info("coarse centroids trained; training the codes")
    index.train(sample)


def _set_nprobe(index, nprobe: int) -> None:
    if nprobe:
        try:
            set_nprobe(_faiss(), index, nprobe)
        except RuntimeError:
            log.debug("this index has no nprobe")


def _default_candidates(k: int) -> int:
    return max(k * RERANK_FACTOR, MIN_CANDIDATES)


def reranked_positions(index, vectors: np.ndarray | None, query: np.ndarray, k: int,
                       candidates: int | None = None) -> list[int]:
    """Positions of the ``k`` nearest vectors: approximate candidates re-scored with the exact vectors.

    ``candidates``: how many to fetch (at least the default ``max(8k, 200)``); calibrated per index
    where the default misses the recall target (the manifest's ``candidates``)."""
    q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
    wanted = min(index.ntotal, max(_default_candidates(k), candidates or 0))
    _, found = search_index(index, q, wanted)
    positions = np.unique(found[0][found[0] >= 0])  # sorted: kinder to the memory map
    scores = np.asarray(vectors[positions], dtype=np.float32) @ q[0]
    best = np.argsort(-scores, kind="stable")[:k]
    return positions[best].tolist()


def search_index(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search``, except that an IVF index whose HNSW coarse quantizer would be searched wider
    than a scan of all its centroids costs (efSearch × M graph distances against nlist) finds its
    nprobe lists by that scan: exact nearest lists for less CPU. Measured on the 10^7 diffuse index
    (16,384 lists, nprobe 1,536, efSearch 2,048, one thread): 7.5 ms a query in the graph, 2.0 ms
    for the scan of the graph's own stored centroids (no extra memory), 99.5 % the same lists."""
    faiss = _faiss()
    quantizer = None
    if isinstance(index, faiss.IndexIVF):
        quantizer = faiss.downcast_index(index.quantizer)
    if not isinstance(quantizer, faiss.IndexHNSW) or (
            quantizer.hnsw.efSearch * quantizer.hnsw.nb_neighbors(1) < index.nlist):
        return index.search(queries, k)
    nprobe = min(index.nprobe, index.nlist)
    coarse_scores, lists = quantizer.storage.search(queries, nprobe)
    return index.search_preassigned(queries, k, lists, coarse_scores)


def _nlist_of(index) -> int:
    try:
        return int(_faiss().extract_index_ivf(index).nlist)
    except (RuntimeError, AttributeError):
        return 0


def _read_shared(faiss, path: Path) -> tuple[object, bool]:
    """An index opened for searching only, memory-mapped where FAISS can, and whether it was.

    With ``IO_FLAG_MMAP_IFC`` (faiss >= 1.10) the codes of flat indexes and the inverted lists of
    IVF indexes stored as plain arrays (``IVF…,Flat``, 8-bit ``IVF…,PQm``) stay pages of the file:
    server worker processes share one copy in the page cache instead of each holding its own
    (tests/test_index_mmap.py; numbers in docs/serving.md). Index files are never changed in place
    (a new generation or append is a new file), so the mapping stays valid while the index is
    open. The 4-bit fast-scan lists (``x4fs``) are read into the process whatever the flag
    (``BlockInvertedLists`` has no mapped form in faiss 1.15): each worker holds its own copy of
    those codes, and only the re-ranking vectors and ids files are shared."""
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
    if flag is not None:
        try:
            index = faiss.read_index(str(path), flag)
            return index, not _fast_scan(faiss, index)
        except RuntimeError:
            log.debug("%s cannot be memory-mapped; reading it into memory", path)
    return faiss.read_index(str(path)), False


def _fast_scan(faiss, index) -> bool:
    kinds = tuple(getattr(faiss, name) for name in ("IndexIVFFastScan", "IndexFastScan") if hasattr(faiss, name))
    try:
        inner = faiss.downcast_index(faiss.extract_index_ivf(index))
    except (RuntimeError, AttributeError):
        inner = faiss.downcast_index(index)
    return isinstance(inner, kinds)


def _write_faiss(index, path: Path) -> None:
    tmp = temp_path(path)
    _faiss().write_index(index, str(tmp))
    commit(tmp, path)


def _suffix(dtype: str) -> str:
    return f"f{np.dtype(dtype).itemsize * 8}"


def _vector_dtype(entry: dict) -> str:
    return entry.get("vector_dtype") or "<f4"  # entries written before float16 existed


def build(directory: Path, modality: str, *, key: str, identity: dict, dim: int, plan: IndexPlan,
          chunks: Chunks, generation: int, seed: int = 1234, workers: int | None = None,
          map_shards: MapShards | None = None, checkpoint: Path | None = None,
          on_phase: Callable[[str, float], None] | None = None, newest: int = 0, calibration=None) -> dict:
    """Write a new generation of ``modality``'s index from (ids, vectors, max rowid) chunks; returns its manifest entry.

    ``workers`` / ``map_shards``: add the vectors in parallel shards (figsearch.index.shards).
    ``checkpoint``: a directory (on the same file system as ``directory``) where each finished
    phase is kept — the written vectors and ids, the training sample, the trained index, every
    added shard, the calibration — so that a build killed part way and run again with the same
    arguments skips what was finished (``chunks`` is not even read once the vectors are written).
    The caller names one directory per build (another plan or modality there starts afresh);
    it is removed once the index is published. ``on_phase(name, seconds)`` is called after each
    phase this call ran (``vectors``, ``train``, ``add``, ``calibrate``). ``newest``: the last
    ``newest`` vectors were appended since the lists were last trained (a retrain after appends):
    half of the calibration queries come from them, moved off their vectors, as an append's
    re-calibration draws them — queries of new kinds are where lists lose recall, and a uniform
    draw holds few of them (docs/index-scale.md, stop 26). ``calibration``: those queries with their
    exact neighbours, already computed over these very vectors in this order (the refused append's
    re-calibration drew them: ``Refused.calibration``), so that the scan of every vector is not run twice.
    """
    faiss = _faiss()
    stem = f"{modality}.g{generation}"
    dtype = plan.vector_dtype if plan.rerank else "<f4"  # a flat index is built from these: keep them exact
    vec_path, ids_path = directory / f"{stem}.{_suffix(dtype)}", directory / f"{stem}.ids"
    phase = _PhaseClock(on_phase)
    state = _Checkpoint(checkpoint, _checkpoint_identity(modality, dim, plan, dtype, generation, seed)) \
        if checkpoint else None
    written = state.get("vectors") if state else None
    if written:
        vec_tmp, ids_tmp = state.path(f"vectors.{_suffix(dtype)}"), state.path("ids")
        n, width, max_rowid = written["count"], written["id_width"], written["max_rowid"]
        log.info("checkpoint: %d %s vectors already written", n, modality)
    else:
        vec_tmp = state.path(f"vectors.{_suffix(dtype)}") if state else temp_path(vec_path)
        ids_tmp = state.path("ids") if state else temp_path(ids_path)
        n, width, max_rowid = _write_vectors(chunks, modality, dim, dtype, vec_tmp, ids_tmp)
        if state:
            state.put("vectors", {"count": n, "id_width": width, "max_rowid": max_rowid})
        phase.done("vectors")
    vectors = np.memmap(vec_tmp, dtype=dtype, mode="r", shape=(n, dim)) if n else np.zeros((0, dim), np.float32)
    if state and state.path("trained.faiss").exists():
        index = faiss.read_index(str(state.path("trained.faiss")))
        log.info("checkpoint: trained %s read", plan.factory)
    else:
        index = _new_index(plan, dim)
        if not index.is_trained:
            if n == 0:
                raise CollectionError(f"cannot train a {plan.factory} index without vectors")
            sample = _training_positions(n, plan, seed)
            log.info("training %s on %d of %d %s vectors", plan.factory, len(sample), n, modality)
            _train(faiss, index, _training_sample(vectors, sample, state))
        if state:
            state.write_index(index, "trained.faiss")
            state.path("sample.npy").unlink(missing_ok=True)
        phase.done("train")
    add_vectors(faiss, index, vec_tmp, dtype, n, dim, workers=workers, map_shards=map_shards, scratch=directory,
                resume=state.path("shards") if state else None, assignment=ADD_ASSIGNMENT)
    phase.done("add")
    nprobe, recall, candidates, margin = plan.nprobe, None, 0, None
    nlist = _nlist_of(index)
    calibrated = state.get("calibration") if state else None
    if calibrated:
        nprobe, recall, candidates = calibrated["nprobe"], calibrated["recall"], calibrated["candidates"]
        margin = calibrated.get("margin")
        log.info("checkpoint: calibrated nprobe %d, recall %s, candidates %d", nprobe, recall, candidates)
        _set_nprobe(index, nprobe)
    elif nlist and plan.rerank and n > CALIBRATION_K:
        # queries held out of the training sample stand in for new drawings (figsearch.index.calibrate)
        if calibration is not None:
            held_out = calibration
        elif 0 < newest < n:
            held_out = calibration_set(faiss, vectors, newest=newest)
        else:
            held_out = calibration_set(faiss, vectors, exclude=_training_positions(n, plan, seed))
        result = calibrate(faiss, index, vectors, nlist, reranked_positions, _default_candidates(CALIBRATION_K),
                           calibration=held_out)
        nprobe, recall, candidates, margin = result.nprobe, result.recall, result.candidates, result.margin
        if state:
            state.put("calibration", {"nprobe": nprobe, "recall": recall, "candidates": candidates, "margin": margin})
        phase.done("calibrate")
    index_name = f"{stem}.a0.faiss"
    _write_faiss(index, directory / index_name)
    del vectors
    commit(ids_tmp, ids_path)
    if plan.rerank:
        commit(vec_tmp, vec_path)
    else:
        vec_tmp.unlink()  # a flat index holds the exact vectors itself
    if state:
        state.remove()
    return {
        "encoder": key,
        "identity": identity,
        "dim": dim,
        "plan": plan.to_dict(),
        "generation": generation,
        "appends": 0,
        "count": n,
        "id_width": width,
        "max_rowid": max_rowid,
        "built_count": n,
        "nprobe": nprobe,
        "calibrated_recall": recall,
        "calibration_margin": margin,
        "candidates": candidates,
        "calibrated_count": n,
        "built_nprobe": nprobe,
        "vector_dtype": dtype if plan.rerank else None,
        "assignment": ADD_ASSIGNMENT,
        "files": {"index": index_name, "ids": ids_path.name, "vectors": vec_path.name if plan.rerank else None},
        "built_at": utcnow(),
    }


def _checkpoint_identity(modality: str, dim: int, plan: IndexPlan, dtype: str, generation: int, seed: int) -> dict:
    # the assignment rule is part of it: shards added by another rule must not be merged with these
    return {"modality": modality, "dim": dim, "plan": plan.to_dict(), "dtype": dtype, "generation": generation,
            "seed": seed, "assignment": ADD_ASSIGNMENT}


def seed_readd(checkpoint: Path, directory: Path, entry: dict, *, modality: str, seed: int = 1234) -> None:
    """Prepare ``build(..., checkpoint=checkpoint)`` to re-add a published generation's vectors.

    The generation's re-ranking vectors and ids (in ``directory``, described by ``entry``) are
    copied into the checkpoint as its written vectors, and its index file, emptied (``reset``:
    the coarse centroids, the quantizer's graph and the codes' training stay), as its trained
    index; ``build`` with the same plan, dimension, generation and seed then skips writing and
    training, and adds every vector again by the current ``ADD_ASSIGNMENT`` (its shards, the
    calibration and the publication as for any build). Nothing in ``directory`` is changed.
    Resumable: files already in place (the copies are renamed into place when complete) are kept.
    For an index whose lists were filled by another rule (``hnsw-ef16`` before stop 18) this
    saves the vectors and the training, most of a 10^7 build's time apart from adding."""
    plan = IndexPlan.from_dict(entry["plan"])
    dtype = _vector_dtype(entry)
    files = entry["files"]
    if not plan.rerank or not files.get("vectors"):
        raise CollectionError("only an index with re-ranking vectors on disk can be re-added from its own files")
    state = _Checkpoint(checkpoint, _checkpoint_identity(modality, entry["dim"], plan, dtype, entry["generation"],
                                                         seed))
    if not state.get("vectors"):
        for name, target in ((files["vectors"], f"vectors.{_suffix(dtype)}"), (files["ids"], "ids")):
            tmp = state.path(f".{target}.{os.getpid()}.part")
            shutil.copyfile(directory / name, tmp)
            os.replace(tmp, state.path(target))
        state.put("vectors", {"count": entry["count"], "id_width": entry["id_width"],
                              "max_rowid": entry["max_rowid"]})
    if not state.path("trained.faiss").exists():
        faiss = _faiss()
        index = faiss.read_index(str(directory / files["index"]))
        index.reset()  # empties the inverted lists; the quantizer and the codes' training are kept
        state.write_index(index, "trained.faiss")
    log.info("checkpoint %s seeded with %d vectors and the emptied index of %s", checkpoint, entry["count"],
             directory / files["index"])


def _training_positions(n: int, plan: IndexPlan, seed: int) -> np.ndarray:
    """The sorted positions of the training sample (the same on a resumed build: seeded)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, plan.train_size or n), replace=False))


def _write_vectors(chunks: Chunks, modality: str, dim: int, dtype: str, vec_out: Path,
                   ids_out: Path) -> tuple[int, int, int]:
    """Stream the chunks' vectors to ``vec_out`` and their ids to ``ids_out``: (count, id width, max rowid).

    Nothing holds the vectors in memory (a big collection need not fit twice); the ids are kept
    until the end, since their fixed width is that of the longest. Both files are complete once
    this returns (written under temporary names, synced, renamed).
    """
    all_ids: list[str] = []
    max_rowid = 0
    vec_tmp = vec_out.with_name(f".{vec_out.name}.{os.getpid()}.part")
    with open(vec_tmp, "wb") as out:
        for ids, vectors, top in chunks:
            if vectors.shape[1] != dim:
                raise CollectionError(f"stored {modality} vectors have dimension {vectors.shape[1]}, expected {dim}")
            out.write(np.ascontiguousarray(vectors, dtype=dtype).tobytes())
            all_ids.extend(ids)
            max_rowid = max(max_rowid, top)
    n = len(all_ids)
    log.info("%d %s vectors written to %s", n, modality, vec_out.name)
    width = _id_width(all_ids)
    ids_tmp = ids_out.with_name(f".{ids_out.name}.{os.getpid()}.part")
    np.array(all_ids, dtype=f"S{width}").tofile(ids_tmp) if n else open(ids_tmp, "wb").close()
    del all_ids
    commit(vec_tmp, vec_out)
    commit(ids_tmp, ids_out)
    return n, width, max_rowid


def _training_sample(vectors: np.ndarray, positions: np.ndarray, state: _Checkpoint | None) -> np.ndarray:
    """The training rows as float32 (kept in the checkpoint: gathering them reads all of a big file)."""
    if state and state.path("sample.npy").exists():
        sample = np.load(state.path("sample.npy"))
        if len(sample) == len(positions):
            return sample
    sample = np.ascontiguousarray(vectors[positions], dtype=np.float32)
    if state:
        tmp = state.path(f".sample.{os.getpid()}.npy")
        np.save(tmp, sample)
        os.replace(tmp, state.path("sample.npy"))
    return sample


class _PhaseClock:
    def __init__(self, on_phase: Callable[[str, float], None] | None):
        self.on_phase, self.start = on_phase, time.perf_counter()

    def done(self, name: str) -> None:
        seconds, self.start = time.perf_counter() - self.start, time.perf_counter()
        log.info("build phase %s: %.1f s", name, seconds)
        if self.on_phase:
            self.on_phase(name, seconds)


class _Checkpoint:
    """The finished phases of one build, in a directory; a different build's leftovers there are removed."""

    def __init__(self, directory: Path, identity: dict):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state_path = self.directory / "state.json"
        state = {}
        if self.state_path.exists():
            try:
                state = json.loads(self.state_path.read_text())
            except ValueError:
                state = {}
        if state.get("identity") != identity:
            if state or any(self.directory.iterdir()):
                log.info("checkpoint %s belongs to another build: starting afresh", self.directory)
            self.remove()
            self.directory.mkdir(parents=True)
            state = {"identity": identity}
            self._save(state)
        self.state = state

    def path(self, name: str) -> Path:
        if name == "shards":
            (self.directory / name).mkdir(exist_ok=True)
        return self.directory / name

    def get(self, phase: str):
        return self.state.get(phase)

    def put(self, phase: str, value) -> None:
        self.state[phase] = value
        self._save(self.state)

    def write_index(self, index, name: str) -> None:
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        _faiss().write_index(index, str(tmp))
        os.replace(tmp, self.directory / name)

    def _save(self, state: dict) -> None:
        atomic_write_bytes(self.state_path, json.dumps(state, indent=1).encode())

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class Refused:
    """An append that could not be done: the caller rebuilds (a new generation) instead, for ``reason``."""

    reason: str
    #: the appended vectors' lists no longer serve them (the rebuild retrains the lists)
    retrain: bool = False
    #: the re-calibration's queries and their exact neighbours over every vector (a retrain's
    #: rebuild of the same vectors calibrates with them: ``build(calibration=...)``)
    calibration: tuple | None = field(default=None, repr=False, compare=False)


def append(directory: Path, entry: dict, ids: list[str], vectors: np.ndarray, max_rowid: int) -> dict | Refused:
    """Add vectors to an existing generation: its new manifest entry, or ``Refused`` (rebuild instead)."""
    if any(len(i.encode("utf-8")) > entry["id_width"] for i in ids):
        return Refused("the new figure ids do not fit the id file")
    faiss = _faiss()
    files = entry["files"]
    index = faiss.read_index(str(directory / files["index"]))
    n, dim, width = entry["count"], entry["dim"], entry["id_width"]
    if index.ntotal != n:
        return Refused(f"the index file holds {index.ntotal} vectors where the manifest says {n}")
    dtype = _vector_dtype(entry)
    vectors = np.ascontiguousarray(vectors, dtype=dtype)
    # cut what a crashed append may have left beyond the valid count, then grow the files
    with open(directory / files["ids"], "rb+") as handle:
        handle.truncate(n * width)
        handle.seek(0, os.SEEK_END)
        handle.write(np.array(ids, dtype=f"S{width}").tobytes())
        os.fsync(handle.fileno())
    if files.get("vectors"):
        with open(directory / files["vectors"], "rb+") as handle:
            handle.truncate(n * dim * np.dtype(dtype).itemsize)
            handle.seek(0, os.SEEK_END)
            handle.write(vectors.tobytes())
            os.fsync(handle.fileno())
    with assigning(faiss, index, entry.get("assignment") or LEGACY_ASSIGNMENT):
        index.add(np.asarray(vectors, dtype=np.float32))
    total = n + len(ids)
    calibration = _recalibrate_after_append(directory, entry, index, total)
    if isinstance(calibration, Refused):
        return calibration  # the trained lists no longer fit the data
    appends = entry.get("appends", 0) + 1
    index_name = f"{files['index'].split('.a')[0]}.a{appends}.faiss"
    _write_faiss(index, directory / index_name)
    return dict(
        entry,
        count=total,
        appends=appends,
        max_rowid=max(entry["max_rowid"], max_rowid),
        files=dict(files, index=index_name),
        updated_at=utcnow(),
        **(calibration or {}),
    )


def _recalibrate_after_append(directory: Path, entry: dict, index, total: int) -> dict | Refused | None:
    """New nprobe fields for an IVF index that appends have grown by RECALIBRATE_GROWTH_PERCENT or more.

    Appended vectors go to lists trained without them; where they are unlike the training sample,
    the calibrated nprobe no longer reaches the recall target (measured: benchmarks/index_benchmark.py
    --appends). None: nothing to change; ``Refused``: the lists must be retrained (the caller
    rebuilds) — no nprobe up to ``RETRAIN_NPROBE_FACTOR`` × the build's reaches the bar.
    """
    nlist = _nlist_of(index)
    files = entry["files"]
    if not nlist or not files.get("vectors") or total <= CALIBRATION_K:
        return None
    calibrated = entry.get("calibrated_count") or entry.get("built_count") or entry["count"]
    if (total - calibrated) * 100 < RECALIBRATE_GROWTH_PERCENT * calibrated:
        return None
    vectors = np.memmap(directory / files["vectors"], dtype=_vector_dtype(entry), mode="r", shape=(total, entry["dim"]))
    search = functools.partial(reranked_positions, candidates=entry.get("candidates") or None)
    # Recall bought with many more lists is paid by every query (at 10^6 × 256, +10 % of new kinds
    # took nprobe from 64 to 930 for recall 0.945); lists retrained on the data as it now is need
    # fewer (384 for 0.959 at stop 26, though 8× the build's 48: docs/index-scale.md). The ladder
    # stops at RETRAIN_NPROBE_FACTOR × the build's: climbing past it only to refuse was wasted.
    built = entry.get("built_nprobe") or entry.get("nprobe") or 0
    most = RETRAIN_NPROBE_FACTOR * built if built else None
    faiss = _faiss()
    queries = calibration_set(faiss, vectors, newest=total - entry.get("built_count", entry["count"]))
    nprobe, recall = calibrate_nprobe(faiss, index, vectors, nlist, search, max_nprobe=most, calibration=queries)
    # the build's own recall is the bar where the data never reached the target (hard to partition)
    bar = min(RECALL_TARGET, (entry.get("calibrated_recall") or RECALL_TARGET) - 0.01)
    if recall < bar or (most and nprobe > most):
        reason = (f"after appends the lists reach recall@{CALIBRATION_K} {recall:.3f} at nprobe {nprobe} "
                  f"(bar {bar:.3f}; the build needed nprobe {built}): the lists are retrained")
        log.info("%s", reason)
        return Refused(reason, retrain=True, calibration=queries)
    _set_nprobe(index, nprobe)
    return {"nprobe": nprobe, "calibrated_recall": recall, "calibrated_count": total}


@dataclass
class ModalityIndex:
    """An open, read-only index of one modality."""

    modality: str
    entry: dict
    index: object
    ids: np.ndarray
    vectors: np.ndarray | None
    #: the index's codes are pages of its file (shared between processes), not a copy in this one
    mapped: bool = False

    @classmethod
    def open(cls, directory: Path, modality: str, entry: dict) -> ModalityIndex:
        faiss = _faiss()
        files = entry["files"]
        n, dim, width = entry["count"], entry["dim"], entry["id_width"]
        index, mapped = _read_shared(faiss, directory / files["index"])
        if index.ntotal != n or index.d != dim:
            raise CollectionError(f"{modality} index holds {index.ntotal}×{index.d}, manifest says {n}×{dim}")
        _set_nprobe(index, entry.get("nprobe") or IndexPlan.from_dict(entry["plan"]).nprobe)
        ids = np.memmap(directory / files["ids"], dtype=f"S{width}", mode="r", shape=(n,)) if n else np.zeros(0, f"S{width}")
        vectors = None
        if files.get("vectors") and n:
            vectors = np.memmap(directory / files["vectors"], dtype=_vector_dtype(entry), mode="r", shape=(n, dim))
        return cls(modality, entry, index, ids, vectors, mapped)

    @property
    def count(self) -> int:
        return int(self.entry["count"])

    @property
    def dim(self) -> int:
        return int(self.entry["dim"])

    @property
    def encoder(self) -> str:
        return self.entry["encoder"]

    @property
    def plan(self) -> IndexPlan:
        return IndexPlan.from_dict(self.entry["plan"])

    def figure_id(self, position: int) -> str:
        return bytes(self.ids[position]).decode("utf-8")

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` nearest figures to one normalised query vector, best first, as (figure id, cosine)."""
        k = min(k, self.count)
        if k <= 0:
            return []
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise CollectionError(f"query vector has dimension {q.shape[1]}, the {self.modality} index {self.dim}")
        if self.vectors is not None:
            positions = np.asarray(reranked_positions(self.index, self.vectors, q, k, self.entry.get("candidates")),
                                   dtype=np.int64)
            scores = np.asarray(self.vectors[positions], dtype=np.float32) @ q[0]
        else:
            scores, found = search_index(self.index, q, k)
            keep = found[0] >= 0
            positions, scores = found[0][keep], scores[0][keep]
        return [(self.figure_id(int(p)), float(s)) for p, s in zip(positions, scores)]
