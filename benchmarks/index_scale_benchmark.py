"""Indexes at scale (issue 16): build time, memory per vector, one-thread latency and recall@50 at 10^6+.

    nice -n 10 timeout 3000 python benchmarks/index_scale_benchmark.py --n 1000000 --data clustered diffuse \\
        --workers 2 --appends 0.1 0.5 1.0
    nice -n 15 timeout 6000 python benchmarks/index_scale_benchmark.py --n 10000000 --data clustered \\
        --workers 2 --queries 400 --workdir /tmp/idx19/big      # rerun the same line to resume
    nice -n 10 python benchmarks/index_scale_benchmark.py --n 100000 --data clustered diffuse --workers 1 \\
        --queries 1000     # does the calibrated recall hold for fresh queries? (printed side by side)

At 10^7 nothing holds the vectors as float32 either: they are generated 100,000 at a time (per
chunk seeded, so the data do not depend on how many processes draw them; ``--gen-workers``
processes draw, float16 goes to the file: 5.1 GB), the plan (``IVF16384_HNSW32,PQ64x4fs``)
trains on a 655,360-vector sample, and ground truth is the chunked exact scan of that file.
The exact baseline holds at most ``--flat-max-gib`` in memory: above that, ``IndexFlatIP`` is
timed on the first vectors that fit and the time scaled by n / those (exact search is a linear
scan; the output says so), besides one query's chunked scan of the whole memory-mapped file.

``--workdir DIR`` makes a run resumable: ``DIR/{data}-{n}/`` keeps the build's checkpoint (the
vectors file, training sample, trained index, every added shard, the calibration:
``figsearch.index.modality.build(checkpoint=...)``), then the published index, the ground truth,
the query process's measurements and ``results.json``, where every phase is recorded with its
time and the load average when it ended. Running the same command again skips what is finished,
so a run cut by ``timeout`` goes on where it stopped (the time of a killed phase is lost, not
counted); ``--clean`` removes the big files once a data set is measured. Each phase and each
shard is logged with a timestamp as it finishes.

``--readd-from DIR`` (with ``--workdir``, one ``--n`` and ``--data``): instead of drawing and training,
take the published index in ``DIR`` (a run's ``index/`` directory: manifest, index file, float16
vectors, ids), copy its vectors and ids into this run's checkpoint and empty its index (``reset``
keeps the coarse centroids, their HNSW graph and the codes' training;
``figsearch.index.modality.seed_readd``), then add every vector again by the current assignment
rule (stop 18: each to its nearest list), calibrate and measure as any run. ``DIR`` is not
changed. The ground truth of ``DIR/../truth.npy`` is reused when ``DIR/../queries.npy`` holds the
same queries (the vectors are the same). Resumable like any ``--workdir`` run:

    nice -n 0 timeout 7000 python benchmarks/index_scale_benchmark.py --n 10000000 --data diffuse \\
        --workers 2 --queries 400 --workdir /tmp/idx22/big --readd-from /tmp/idx21/big/diffuse-10000000/index

For each data set, ``n`` synthetic 256-d unit vectors are generated in chunks and streamed into
``figsearch.index.modality.build`` exactly as ``figsearch index`` builds (automatic plan: IVF-PQ
4-bit fast scan, float16 re-ranking vectors on disk from 10^6 on, nprobe calibrated), with the
vectors added in ``--workers`` shard processes. Nothing but the index files holds the vectors:
ground truth is exact inner-product search over the index's own memory-mapped float16 vectors,
in chunks.

- ``clustered``: 10,000 cluster centres in a 48-d subspace, plus isotropic noise (the structure of
  real embeddings: many kinds of drawings, each a tight group);
- ``diffuse`` (harder): 50,000 centres in a 64-d subspace, wider clusters, more noise.

Queries are fresh draws from the same distribution. Latency and memory are measured in a child
process that opens the index the way the search service does (``IndexSnapshot.open`` on the
manifest, memory-mapped) and searches one query at a time on one thread through
``ModalityIndex.search`` (approximate candidates, float16 re-ranking, id decoding), after a warm-up
pass over other queries; the process's CPU time per query is reported beside the wall time (on a
loaded machine the two differ). Memory in RAM: the child's anonymous RSS growth from before opening to
after the queries (FAISS copies 4-bit fast-scan lists into its own memory); the resident pages of
the memory-mapped files (index file, ids, re-ranking vectors; /proc/self/smaps) are page cache,
shared and reclaimable, and reported apart. Baseline, same run: exact search
(``IndexFlatIP`` over the same vectors in memory, when they fit in ``--flat-max-gib``; else scaled
from the first vectors that fit, as above). Appends: ``--appends`` fractions of n (cumulative, half
around cluster centres the index was not trained on) are appended to a copy of the built index
(``DIR/appends``), each step as ``figsearch index`` takes it (``append_step``:
``figsearch.index.sync.append_or_rebuild`` — append, re-calibrate once grown by 10 %, or rebuild with
retrained lists; only, a rebuild reads the vectors from the index's own files, not from SQLite).
After each step the query process measures recall@50 of fresh queries (half of the new kinds;
printed per half), one-thread p50/p95 and RAM, beside the calibration's promise, the step's times
(appending, re-calibrating, rebuilding) and, in the same run, the recall of the index appended to
without re-calibration and the time of a full rebuild of the same vectors (the step's own rebuild
when it rebuilt; ``--rebuild-baseline``: one more build after a step that appended).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from figsearch.index import calibrate, modality, sync
from figsearch.index.calibrate import exact_neighbours
from figsearch.index.files import update_entry
from figsearch.index.modality import _faiss, append, build
from figsearch.index.plan import IndexPlan, _factory_nlist, choose_plan

log = logging.getLogger("index_scale_benchmark")

DATA = {
    # centres, latent dims, spread of a cluster (centres have unit spread), isotropic noise
    "clustered": (10_000, 48, 0.6, 0.15),
    "diffuse": (50_000, 64, 0.8, 0.2),
}
CHUNK = 100_000
K = 50


@functools.lru_cache(maxsize=4)
def _space(kind: str, dim: int, new_kinds: bool) -> tuple[np.ndarray, np.ndarray]:
    centres, latent, _, _ = DATA[kind]
    space = np.random.default_rng(12345)
    basis = np.linalg.qr(space.standard_normal((dim, latent)))[0].T.astype(np.float32)
    middles = space.standard_normal((centres, latent)).astype(np.float32)
    if new_kinds:  # half of the vectors from centres the index was not trained on
        fresh = np.random.default_rng(54321).standard_normal((centres, latent)).astype(np.float32) * 1.3
        middles = np.concatenate([middles, fresh])
    return basis, middles


def _chunk(kind: str, dim: int, seed: int, new_kinds: bool, number: int, m: int, dtype: str = "<f4") -> np.ndarray:
    """Chunk ``number`` (m vectors) of a stream: its own generator, so any process can draw any chunk."""
    _, latent, spread, noise = DATA[kind]
    basis, middles = _space(kind, dim, new_kinds)
    draw = np.random.default_rng([seed, number])
    z = middles[draw.integers(0, len(middles), m)]
    z += spread * draw.standard_normal((m, latent), dtype=np.float32)
    x = z @ basis
    x += noise * draw.standard_normal((m, dim), dtype=np.float32)  # the cost of it all: float32 draws, in place
    x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    return x.astype(dtype, copy=False)


def _chunk_task(args) -> np.ndarray:
    return _chunk(*args)


def stream(kind: str, n: int, dim: int, seed: int, new_kinds: bool = False, dtype: str = "<f4", workers: int = 1):
    """(m, dim) unit vectors, ``CHUNK`` at a time; the space and centres depend on ``kind`` only."""
    tasks = [(kind, dim, seed, new_kinds, i, min(CHUNK, n - start), dtype) for i, start in enumerate(range(0, n, CHUNK))]
    if workers <= 1 or len(tasks) < 4:
        yield from map(_chunk_task, tasks)
        return
    # spawn: a forked child would inherit FAISS's OpenMP state; imap keeps the chunks in order
    with get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_chunk_task, tasks, chunksize=1)


def figure_ids(start: int, stop: int) -> list[str]:
    return [f"V{i:010d}" for i in range(start, stop)]


def chunks_of(kind: str, n: int, dim: int, seed: int, offset: int = 0, new_kinds: bool = False, dtype: str = "<f4",
              workers: int = 1):
    done = offset
    for x in stream(kind, n, dim, seed, new_kinds, dtype, workers):
        yield figure_ids(done, done + len(x)), x, done + len(x)
        done += len(x)


def mapped_vectors(directory: Path, entry: dict) -> np.ndarray:
    return np.memmap(directory / entry["files"]["vectors"], dtype=entry["vector_dtype"] or "<f4", mode="r",
                     shape=(entry["count"], entry["dim"]))


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def pct(samples) -> tuple[float, float]:
    p50, p95 = np.percentile(np.asarray(samples) * 1000, [50, 95])
    return float(p50), float(p95)


# ---------------------------------------------------------------- the query process


def _rss() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def _mapped_rss(directory: Path) -> dict:
    """Resident bytes per mapped file under ``directory``, by suffix (.faiss, .ids, .f16/.f32)."""
    out: dict[str, int] = {}
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and ":" not in parts[0]:
            path = parts[5] if len(parts) >= 6 else ""
            current = Path(path).suffix if path.startswith(str(directory)) else None
        elif current and line.startswith("Rss:"):
            out[current] = out.get(current, 0) + int(parts[1]) * 1024
    return out


def query_child(directory: Path, queries_path: Path, out_path: Path) -> None:
    from figsearch.index.snapshot import IndexSnapshot

    _faiss()  # FAISS imported and its threads set before the baseline memory reading
    queries = np.load(queries_path)
    warm, timed = queries[: len(queries) // 4], queries[len(queries) // 4 :]
    before = _rss()
    snapshot = IndexSnapshot.open(directory)
    index = snapshot.indexes["visual"]
    opened = _rss()
    for q in warm:  # the server's first queries: page in the lists' blocks and the quantizer
        index.search(q, K)
    times, cpu_times, found = [], [], []
    for q in timed:
        start, cpu = time.perf_counter(), time.thread_time()
        hits = index.search(q, K)
        cpu_times.append(time.thread_time() - cpu)
        times.append(time.perf_counter() - start)
        found.append([int(f[1:]) for f, _ in hits])
    after = _rss()
    mapped = _mapped_rss(directory)
    out_path.write_text(json.dumps({
        "times": times, "cpu_times": cpu_times, "load": [round(x, 2) for x in os.getloadavg()], "found": found, "before": before, "opened": opened, "after": after, "mapped": mapped,
        "serialized": int(_faiss().serialize_index(index.index).nbytes),
    }))


# ---------------------------------------------------------------- the driver


def measure_queries(directory: Path, entry: dict, queries: np.ndarray, workdir: Path) -> dict:
    """The query process's measurements (it opens the index from the manifest, as a server does)."""
    update_entry(directory, "visual", entry)  # what a search opens: the manifest
    qpath, opath = workdir / "queries.npy", workdir / "child.json"
    np.save(qpath, queries)
    env = dict(os.environ, FIGSEARCH_FAISS_THREADS="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, __file__, "--query-child", str(directory), str(qpath), str(opath)], env=env,
                   check=True)
    return json.loads(opath.read_text())


def exact_baseline(faiss, vectors: np.ndarray, queries: np.ndarray, flat_max_gib: float) -> tuple[list, str]:
    """One-query timings of exact search, and what was timed."""
    n, dim = vectors.shape
    fits = min(n, int(flat_max_gib * 2**30 // (dim * 4)))
    flat = faiss.IndexFlatIP(dim)
    for start in range(0, fits, CHUNK):
        flat.add(np.ascontiguousarray(vectors[start : min(start + CHUNK, fits)], dtype=np.float32))
    times = []
    for q in queries[:30]:
        start = time.perf_counter()
        flat.search(q[None, :], K)
        times.append(time.perf_counter() - start)
    del flat
    if fits == n:
        return times, f"IndexFlatIP in memory ({4 * dim} B/vector)"
    scale = n / fits
    start = time.perf_counter()
    exact_neighbours(faiss, vectors, queries[:1], K)
    scan = time.perf_counter() - start
    return [t * scale for t in times], (
        f"IndexFlatIP in memory over the first {fits:,} vectors ({4 * dim} B/vector; all {n:,} would need "
        f"{n * dim * 4 / 2**30:.1f} GiB), times {scale:.1f} (a linear scan); one query's chunked scan of the "
        f"whole float16 file took {scan:.1f} s")


class Results:
    """results.json of one data set: finished phases, kept across runs of the same --workdir."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data = json.loads(path.read_text()) if path and path.exists() else {}

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __getitem__(self, key: str):
        return self.data[key]

    def put(self, key: str, value) -> None:
        self.data[key] = value
        if self.path:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=1))
            os.replace(tmp, self.path)

    def phase(self, name: str, seconds: float, **extra) -> None:
        load = os.getloadavg()
        log.info("%s: %.1f s (load average %.1f %.1f %.1f)", name, seconds, *load)
        self.put("phases", self.data.get("phases", []) + [
            dict(phase=name, seconds=round(seconds, 1), load=[round(x, 2) for x in load],
                 ended=time.strftime("%H:%M:%S", time.gmtime()), **extra)])


class _ShardLog(logging.Handler):
    """Collects the shard lines figsearch.index.shards logs (wall and CPU seconds per shard)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.shards: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("shard %d/%d (vectors %d-%d) added in"):
            number, total, a, b, seconds, cpu, pid, rss = record.args[:8]
            self.shards.append({"shard": number, "of": total, "start": a, "stop": b, "seconds": round(seconds, 1),
                                "cpu_seconds": round(cpu, 1), "pid": pid, "peak_rss_mib": round(rss)})


def seed_from(source: Path, base: Path, results: Results, kind: str, n: int, dim: int, queries_n: int) -> IndexPlan:
    """--readd-from: the published index in ``source`` becomes this run's checkpoint (vectors, ids, emptied index)."""
    manifest = json.loads((source / "manifest.json").read_text())
    old = manifest["modalities"]["visual"]
    if old["count"] != n or old["dim"] != dim:
        raise SystemExit(f"{source} holds {old['count']}x{old['dim']} vectors, this run is for {n}x{dim}")
    start = time.perf_counter()
    modality.seed_readd(base / "checkpoint", source, old, modality="visual")
    queries = np.concatenate(list(stream(kind, queries_n, dim, seed=2)))
    their_queries, their_truth = source.parent / "queries.npy", source.parent / "truth.npy"
    if not (base / "truth.npy").exists() and their_truth.exists() and their_queries.exists() \
            and np.array_equal(np.load(their_queries), queries):
        shutil.copyfile(their_truth, base / "truth.npy")
        log.info("ground truth of the same queries over the same vectors copied from %s", their_truth)
    if not any(p["phase"] == "re-add: seed the checkpoint" for p in results.data.get("phases", [])):
        results.phase("re-add: seed the checkpoint", time.perf_counter() - start, source=str(source))
    return IndexPlan.from_dict(old["plan"])


def run(kind: str, n: int, dim: int, queries_n: int, workers: int, workdir: Path, flat_max_gib: float,
        appends: list[float], keep: bool, clean: bool, gen_workers: int, readd_from: Path | None = None,
        rebuild_baseline: bool = False) -> None:
    faiss = _faiss()
    base = workdir / f"{kind}-{n}" if keep else Path(tempfile.mkdtemp(prefix=f"scale-{kind}-", dir=workdir))
    directory = base / "index"
    directory.mkdir(parents=True, exist_ok=True)
    results = Results(base / "results.json" if keep else None)
    try:
        plan = choose_plan(n, dim)
        if readd_from is not None and "entry" not in results:
            plan = seed_from(readd_from, base, results, kind, n, dim, queries_n)
        if "entry" in results:
            entry = results["entry"]
            log.info("[%s] index built by an earlier run: %s", kind, entry["files"])
        else:
            shard_log = _ShardLog()
            logging.getLogger("figsearch.index.shards").addHandler(shard_log)
            try:
                entry = build(directory, "visual", key="bench", identity={}, dim=dim, plan=plan,
                              chunks=chunks_of(kind, n, dim, seed=1, dtype=plan.vector_dtype, workers=gen_workers),
                              generation=1, workers=workers, checkpoint=base / "checkpoint" if keep else None,
                              on_phase=lambda name, seconds: results.phase(f"build {name}", seconds))
            finally:
                logging.getLogger("figsearch.index.shards").removeHandler(shard_log)
            results.put("shards", results.data.get("shards", []) + shard_log.shards)
            results.put("entry", entry)
        vectors = mapped_vectors(directory, entry)
        queries = np.concatenate(list(stream(kind, queries_n, dim, seed=2)))
        timed = queries[len(queries) // 4 :]
        truth_path = base / "truth.npy"
        if not truth_path.exists():
            start = time.perf_counter()
            truth = exact_neighbours(faiss, vectors, timed, K)
            np.save(base / "truth.tmp.npy", truth)
            os.replace(base / "truth.tmp.npy", truth_path)
            results.phase("ground truth (chunked exact scan)", time.perf_counter() - start)
        truth = np.load(truth_path)
        if "child" not in results:
            start = time.perf_counter()
            results.put("child", measure_queries(directory, entry, queries, base))
            results.phase("query process", time.perf_counter() - start)
        if "baseline" not in results:
            start = time.perf_counter()
            flat_times, baseline = exact_baseline(faiss, vectors, timed, flat_max_gib)
            results.put("baseline", {"times": flat_times, "what": baseline})
            results.phase("exact baseline", time.perf_counter() - start)
        del vectors
        report(kind, n, dim, plan, entry, results, truth, workers, directory)
        if appends:
            measure_appends(faiss, kind, directory, entry, n, dim, queries_n, appends, base, rebuild_baseline)
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
        elif clean:
            for path in list(directory.iterdir()) + [base / "checkpoint"]:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            log.info("removed the index files under %s (results.json and truth.npy kept)", base)


def _nlist(plan) -> int:
    return _factory_nlist(plan.factory)


def report(kind: str, n: int, dim: int, plan, entry: dict, results: Results, truth: np.ndarray, workers: int,
           directory: Path) -> None:
    child = results["child"]
    anon = child["after"]["RssAnon"] - child["before"]["RssAnon"]
    mapped = child["mapped"]
    # FAISS copies 4-bit fast-scan lists into its own memory even when asked to map the file
    # (BlockInvertedLists cannot be mapped): the anonymous growth is the index in RAM, and the
    # file's mapped pages are page cache on top (shared, reclaimable), reported apart
    in_ram = anon
    a50, a95 = pct(child["times"])
    f50, f95 = pct(results["baseline"]["times"])
    cpu = child.get("cpu_times")
    c50 = f", CPU time per query p50 {pct(cpu)[0]:.2f} ms / p95 {pct(cpu)[1]:.2f} ms" if cpu else ""
    disk = sum(p.stat().st_size for p in directory.iterdir() if not p.name.startswith(".")) / n
    phases = results.data.get("phases", [])
    build_s = sum(p["seconds"] for p in phases if p["phase"].startswith("build "))
    lines = "; ".join(f"{p['phase']} {p['seconds']:.0f} s (load {p['load'][0]:.1f})" for p in phases)
    shards = results.data.get("shards", [])
    add = next((p["seconds"] for p in phases if p["phase"] == "build add"), 0)
    speed = ""
    if shards and add:
        own = sum(s["seconds"] for s in shards)
        cpu_s = sum(s["cpu_seconds"] for s in shards)
        speed = (f"\n  adding: {len(shards)} shards on {workers} worker process(es) in {add:.0f} s; the shards' own "
                 f"times sum to {own:.0f} s ({own / add:.2f}x the phase), their CPU time to {cpu_s:.0f} s "
                 f"({cpu_s / add:.2f}x): one process with a core to itself would need about the CPU time; "
                 f"worker peak RSS {max(s['peak_rss_mib'] for s in shards)} MiB")
    measured = recall(child["found"], truth)
    margin = entry.get("calibration_margin")
    promise = (f"calibrated recall {entry['calibrated_recall']:.3f} on {calibrate.CALIBRATION_QUERIES} held-out stored "
               f"queries (bar {calibrate.RECALL_TARGET} + margin {margin:.3f}); fresh queries got {measured:.3f}, "
               f"{measured - entry['calibrated_recall']:+.3f}" if margin is not None else
               f"calibrated recall {entry['calibrated_recall']:.3f}")
    print(
        f"[{kind}] n={n:,} dim={dim}: {plan.factory} + {entry['vector_dtype']} re-ranking, nprobe {entry['nprobe']} "
        f"of {_nlist(plan)} lists, re-ranking candidates {entry.get('candidates') or 'default (400)'} ({promise}), "
        f"build {build_s:.0f} s with {workers} worker(s) (phases: {lines})"
        f"{speed}\n"
        f"  RAM {in_ram / n:.1f} B/vector (anonymous RSS growth of the search process; serialized index "
        f"{child['serialized'] / n:.1f} B/vector); mapped files resident as page cache: index file "
        f"{mapped.get('.faiss', 0) / n:.1f}, ids {mapped.get('.ids', 0) / n:.1f}, re-ranking vectors "
        f"{mapped.get('.f16', mapped.get('.f32', 0)) / n:.1f} B/vector; on disk {disk:.0f} B/vector\n"
        f"  one thread, {len(child['times'])} queries: p50 {a50:.2f} ms, p95 {a95:.2f} ms{c50} "
        f"(load average {child.get('load', ['?'])[0]}), recall@{K} {measured:.3f}\n"
        f"  baseline exact ({results['baseline']['what']}): p50 {f50:.1f} ms, p95 {f95:.1f} ms -> "
        f"p50 {f50 / a50:.1f}x faster, {4 * dim / (in_ram / n):.1f}x less RAM",
        flush=True,
    )


def _recall_in_process(directory: Path, entry: dict, queries: np.ndarray) -> float:
    faiss = _faiss()
    index = modality.ModalityIndex.open(directory, "visual", entry)
    truth = exact_neighbours(faiss, mapped_vectors(directory, entry), queries, K)
    return recall([[int(f[1:]) for f, _ in index.search(q, K)] for q in queries], truth)


class _Stopwatch:
    """Seconds spent in some module functions while installed: the parts of one append step."""

    def __init__(self, **targets):  # label -> (module, function name)
        self.targets, self.seconds, self._saved = targets, dict.fromkeys(targets, 0.0), {}

    def __enter__(self):
        for label, (module, name) in self.targets.items():
            real = self._saved[label] = getattr(module, name)

            def timed(*args, _real=real, _label=label, **kwargs):
                start = time.perf_counter()
                try:
                    return _real(*args, **kwargs)
                finally:
                    self.seconds[_label] += time.perf_counter() - start

            setattr(module, name, timed)
        return self

    def __exit__(self, *exc):
        for label, (module, name) in self.targets.items():
            setattr(module, name, self._saved[label])


def _file_chunks(directory: Path, entry: dict, ids: list[str], vectors: np.ndarray):
    """Every vector as the collection's table would yield them for a rebuild: the index's own first
    ``entry["count"]`` vectors and ids (float16 from 10^6 on, as the index keeps them), then the new ones."""
    n = entry["count"]
    stored = np.memmap(directory / entry["files"]["vectors"], dtype=entry["vector_dtype"] or "<f4", mode="r",
                       shape=(n, entry["dim"]))
    names = np.memmap(directory / entry["files"]["ids"], dtype=f"S{entry['id_width']}", mode="r", shape=(n,))
    for s in range(0, n, CHUNK):
        stop = min(s + CHUNK, n)
        yield [bytes(x).decode() for x in names[s:stop]], np.asarray(stored[s:stop], np.float32), stop
    for s in range(0, len(ids), CHUNK):
        stop = min(s + CHUNK, len(ids))
        yield ids[s:stop], vectors[s:stop], n + stop


def append_step(directory: Path, entry: dict, ids: list[str], vectors: np.ndarray, dim: int) -> dict:
    """Append ``vectors`` the way ``figsearch index`` does (figsearch.index.sync.append_or_rebuild: an append,
    re-calibrated once the index has grown by 10 %, or a new generation with retrained lists), timed in parts.

    Only the source of the vectors differs: a rebuild reads them from the index's own files here, not
    from the collection's SQLite table. Files no entry names any more are removed, as ``figsearch
    index`` does after publishing."""
    total = entry["count"] + len(ids)
    plan = choose_plan(total, dim)
    reason = sync.rebuild_reason(directory, entry, "bench", dim, plan)
    max_rowid = entry["max_rowid"] + len(ids)
    with _Stopwatch(recalibrate=(modality, "_recalibrate_after_append"), rebuild=(sync, "build")) as clock:
        start = time.perf_counter()
        new_entry, action, reason, _ = sync.append_or_rebuild(
            directory, "visual", entry, key="bench", identity={}, dim=dim, plan=plan, reason=reason,
            newest=total - entry.get("built_count", entry["count"]),  # as figsearch.index.sync counts them
            new=lambda: [(ids, vectors, max_rowid)], everything=lambda: _file_chunks(directory, entry, ids, vectors))
        seconds = time.perf_counter() - start
    named = {name for name in new_entry["files"].values() if name}
    for path in directory.iterdir():
        if path.name.startswith("visual.g") and path.name not in named:
            path.unlink()
    return {"entry": new_entry, "action": action, "reason": reason, "seconds": seconds,
            "recalibrate": clock.seconds["recalibrate"], "rebuild": clock.seconds["rebuild"],
            "append": seconds - clock.seconds["recalibrate"] - clock.seconds["rebuild"]}


def _interleave(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a) + len(b), a.shape[1]), a.dtype)
    out[0::2], out[1::2] = a, b
    return out


def measure_appends(faiss, kind: str, directory: Path, entry: dict, n: int, dim: int, queries_n: int,
                    fractions: list[float], workdir: Path, rebuild_baseline: bool) -> None:
    """Append ``fractions`` of n (cumulative; half of the vectors around centres the index was not
    trained on) to a copy of the built index, each step as ``figsearch index`` takes it (append_step),
    and measure what a user then gets: recall@50 of fresh queries (half of the new kinds) against
    exact search, the calibration's promise, nprobe, one-thread latency and memory in a separate
    process. Same-run baselines: the recall of the index appended to without re-calibration (the
    build's nprobe), and the time of a full rebuild of the same vectors (the step's own rebuild
    when it rebuilt; with ``rebuild_baseline`` one more build when it appended)."""
    work = workdir / "appends"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(directory, work)  # the built index stays as it was: a rerun starts from it again
    directory = work
    queries = _interleave(np.concatenate(list(stream(kind, queries_n // 2, dim, seed=2))),
                          np.concatenate(list(stream(kind, queries_n // 2, dim, seed=4, new_kinds=True))))
    timed = queries[len(queries) // 4 :]
    growth, done = modality.RECALIBRATE_GROWTH_PERCENT, 0
    for fraction in fractions:
        target = int(n * fraction)
        extra = np.concatenate(list(stream(kind, target - done, dim, seed=3 + target, new_kinds=True)))
        ids = figure_ids(n + done, n + target)
        done = target
        # the baseline: the same vectors appended without re-calibration (the nprobe of the last calibration)
        modality.RECALIBRATE_GROWTH_PERCENT = 10**9
        try:
            stale = append(directory, entry, ids, extra, entry["max_rowid"] + len(ids))
        finally:
            modality.RECALIBRATE_GROWTH_PERCENT = growth
        stale_recall = _recall_in_process(directory, stale, timed) if isinstance(stale, dict) else None
        step = append_step(directory, entry, ids, extra, dim)
        entry = step["entry"]
        del extra
        load_after_step = os.getloadavg()[0]
        child = measure_queries(directory, entry, queries, workdir)
        truth = exact_neighbours(faiss, mapped_vectors(directory, entry), timed, K)
        got = recall(child["found"], truth)
        first = (len(queries) // 4) % 2  # timed rows alternate; those at even positions of ``queries`` are old kinds
        old_kinds = recall(child["found"][first::2], truth[first::2])
        new_kinds = recall(child["found"][1 - first::2], truth[1 - first::2])
        a50, a95 = pct(child["times"])
        count = entry["count"]
        ram = (child["after"]["RssAnon"] - child["before"]["RssAnon"]) / count
        disk = sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("visual.g")) / count
        full = step["rebuild"] if step["action"] == "rebuilt" else None
        what = "its own rebuild (with the calibration queries of the refusal, if it refused)"
        if full is None and rebuild_baseline:
            scratch = workdir / "baseline-rebuild"
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir()
            start = time.perf_counter()
            build(scratch, "visual", key="bench", identity={}, dim=dim, plan=choose_plan(count, dim),
                  chunks=_file_chunks(directory, dict(entry, count=count), [], np.zeros((0, dim), np.float32)),
                  generation=1)
            full, what = time.perf_counter() - start, "a rebuild of the same vectors, this run"
            shutil.rmtree(scratch, ignore_errors=True)
        ratio = f"{step['seconds'] / full:.2f}x the time of {what} ({full:.0f} s)" if full else "no rebuild timed"
        stale_text = (f"{stale_recall:.3f} with the un-recalibrated index (nprobe {stale['nprobe']})"
                      if stale_recall is not None else f"no append without it ({stale.reason})")
        promise = (f"calibrated recall {entry['calibrated_recall']:.3f}" if entry.get("calibrated_recall") is not None
                   else "no calibration")
        print(
            f"  +{fraction:.0%} appended ({count:,} vectors, {entry['plan']['factory']}): figsearch index "
            f"{step['action']} in "
            f"{step['seconds']:.1f} s (append {step['append']:.1f} s, re-calibrate {step['recalibrate']:.1f} s, "
            f"rebuild {step['rebuild']:.1f} s; load {load_after_step:.1f}) = {ratio}\n"
            f"      nprobe {entry['nprobe']} ({promise}); recall@{K} of fresh queries (half of new kinds) {got:.3f} "
            f"(old kinds {old_kinds:.3f}, new kinds {new_kinds:.3f}) against {stale_text}, "
            f"{got - (stale_recall or 0):+.3f}\n"
            f"      one thread, {len(child['times'])} queries: p50 {a50:.2f} ms, p95 {a95:.2f} ms (load "
            f"{child['load'][0]}); RAM {ram:.1f} B/vector (serialized index {child['serialized'] / count:.1f}); "
            f"on disk {disk:.0f} B/vector" + (f"\n      rebuilt because {step['reason']}" if step["reason"] else ""),
            flush=True)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--query-child":
        query_child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--data", nargs="+", choices=sorted(DATA), default=sorted(DATA))
    parser.add_argument("--queries", type=int, default=400, help="a quarter warm up the query process, the rest are timed")
    parser.add_argument("--workers", type=int, default=2, help="shard processes that add the vectors")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep each data set's files and results under DIR/{data}-{n}/ and resume from them")
    parser.add_argument("--clean", action="store_true", help="with --workdir: remove the index files once measured")
    parser.add_argument("--gen-workers", type=int, default=2, help="processes that draw the synthetic vectors")
    parser.add_argument("--flat-max-gib", type=float, default=1.5, help="largest exact baseline held in memory")
    parser.add_argument("--appends", type=float, nargs="*", default=[],
                        help="after the build, append these fractions of n (cumulative, half of new kinds) as "
                             "figsearch index does and measure each step, e.g. 0.1 0.5 1.0")
    parser.add_argument("--rebuild-baseline", action="store_true",
                        help="with --appends: after a step that appended, time a full rebuild of the same vectors "
                             "(a step that rebuilt is its own)")
    parser.add_argument("--readd-from", type=Path, default=None,
                        help="re-add the vectors of the published index in DIR (its trained index emptied) instead "
                             "of drawing and training; needs --workdir, one --n and one --data")
    args = parser.parse_args(argv)
    if args.readd_from and (args.workdir is None or len(args.n) != 1 or len(args.data) != 1):
        parser.error("--readd-from needs --workdir, one --n and one --data")
    # the rebuilds that appends lead to add their vectors in as many shard processes as the build
    os.environ["FIGSEARCH_INDEX_WORKERS"] = str(args.workers)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    load = os.getloadavg()
    print(f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"k={K}; query threads 1; build: FIGSEARCH_FAISS_THREADS={os.environ.get('FIGSEARCH_FAISS_THREADS', '1')}, "
          f"{args.workers} shard worker(s)", flush=True)
    start = time.perf_counter()
    for n in args.n:
        for kind in args.data:
            run(kind, n, args.dim, args.queries, args.workers, args.workdir or Path(tempfile.gettempdir()),
                args.flat_max_gib, args.appends, keep=args.workdir is not None, clean=args.clean,
                gen_workers=args.gen_workers, readd_from=args.readd_from, rebuild_baseline=args.rebuild_baseline)
    load = os.getloadavg()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - start:.0f} s, driver peak RSS {peak:.0f} MiB, "
          f"load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
