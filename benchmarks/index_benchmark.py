"""Index build time, query latency, recall and memory per vector, against exact search in the same run.

    python benchmarks/index_benchmark.py --sizes 10000 100000 1000000 --dim 256

Synthetic vectors with the structure of real embeddings (uniform random vectors are the worst
case for product quantization and say nothing about real data): points around ``--centres``
cluster centres (2,000; 20,000 is harder) in a 48-dimensional subspace, plus isotropic noise,
L2-normalised. Queries are fresh
draws from the same distribution. For each size the figsearch index (the automatic plan, or
``--factory``) is built exactly as ``figsearch index`` builds it (files on disk, exact vectors
memory-mapped for re-ranking) and searched one query at a time through ``ModalityIndex.search``
(which includes re-ranking and id decoding), next to FAISS's exact ``IndexFlatIP`` over the
same vectors. Targets at 1M: p50 <= 10 ms at k=50, recall@50 >= 0.95, <= 150 bytes in memory
per vector. Threads: FIGSEARCH_FAISS_THREADS (default 1).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from figsearch.index import modality
from figsearch.index.modality import ModalityIndex, _faiss, append, build
from figsearch.index.plan import choose_plan


def synthetic(n: int, dim: int, seed: int, centres: int = 2000, latent: int = 48, chunk: int = 100_000,
              new_kinds: bool = False):
    """Yield (n, dim) float32 unit vectors in chunks: clustered in a low-dimensional subspace.

    ``new_kinds``: half of the vectors come from other cluster centres than the base data's
    (drawings of kinds the index was not trained on), as later appends bring."""
    rng = np.random.default_rng(12345)  # the same space and centres for data and queries
    basis = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T.astype(np.float32)
    middles = rng.standard_normal((centres, latent)).astype(np.float32)
    if new_kinds:
        fresh = np.random.default_rng(54321).standard_normal((centres, latent)).astype(np.float32) * 1.3
        middles = np.concatenate([middles, fresh])
        centres = len(middles)
    draw = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        z = middles[draw.integers(0, centres, m)] + 0.6 * draw.standard_normal((m, latent)).astype(np.float32)
        x = z @ basis + 0.15 * draw.standard_normal((m, dim)).astype(np.float32)
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def percentiles(samples):
    return np.percentile(np.asarray(samples) * 1000, [50, 95])


def run(n: int, dim: int, k: int, queries: int, factory: str | None, workdir: Path, centres: int,
        appends: list[float] | None = None) -> None:
    faiss = _faiss()
    data = np.concatenate(list(synthetic(n, dim, seed=1, centres=centres)))
    q = np.concatenate(list(synthetic(queries, dim, seed=2, centres=centres)))
    ids = [f"US{i:09d}-D00001" for i in range(n)]

    start = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    flat_build = time.perf_counter() - start
    _, truth = flat.search(q, k)  # ground truth, batched
    timed = min(queries, 50 if n >= 500_000 else queries)
    flat_times = []
    for row in q[:timed]:
        t = time.perf_counter()
        flat.search(row[None, :], k)
        flat_times.append(time.perf_counter() - t)

    plan = choose_plan(n, dim, factory=factory)
    directory = Path(tempfile.mkdtemp(dir=workdir))
    chunks = ((ids[s : s + 100_000], data[s : s + 100_000], s + 100_000) for s in range(0, n, 100_000))
    start = time.perf_counter()
    entry = build(directory, "visual", key="bench", identity={}, dim=dim, plan=plan, chunks=chunks, generation=1)
    build_time = time.perf_counter() - start
    index = ModalityIndex.open(directory, "visual", entry)
    del data
    index.search(q[0], k)  # first touch of the memory maps
    times, recalls = [], []
    for i, row in enumerate(q):
        t = time.perf_counter()
        found = index.search(row, k)
        times.append(time.perf_counter() - t)
        got = {int(f[2:11]) for f, _ in found}
        recalls.append(len(got & set(truth[i].tolist())) / k)
    in_memory = faiss.serialize_index(index.index).nbytes / n
    on_disk = sum(p.stat().st_size for p in directory.iterdir()) / n
    f50, f95 = percentiles(flat_times)
    a50, a95 = percentiles(times)
    print(
        f"n={n:>9,} dim={dim}  exact Flat: build {flat_build:6.1f} s, p50 {f50:7.2f} ms, p95 {f95:7.2f} ms, "
        f"{4 * dim} B/vector, recall 1.000\n"
        f"{'':>19}figsearch {plan.factory}{' +rerank' if plan.rerank else ''} (nprobe {entry.get('nprobe')}, "
        f"calibrated recall {entry.get('calibrated_recall') or 1:.3f}): "
        f"build {build_time:6.1f} s, p50 {a50:7.2f} ms, p95 {a95:7.2f} ms, {in_memory:6.1f} B/vector in memory "
        f"({on_disk:.0f} B on disk), recall@{k} {np.mean(recalls):.3f}, speed-up p50 {f50 / a50:5.1f}x",
        flush=True,
    )
    if appends:
        measure_appends(directory, entry, n, dim, k, q, centres, appends)
    for p in directory.iterdir():
        p.unlink()
    directory.rmdir()


def _recall(index: ModalityIndex, data: np.ndarray, queries: np.ndarray, k: int) -> float:
    faiss = _faiss()
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    _, truth = flat.search(queries, k)
    found = 0
    for row, expected in zip(queries, truth):
        got = {int(f[2:11]) for f, _ in index.search(row, k)}
        found += len(got & set(expected.tolist()))
    return found / (k * len(queries))


def measure_appends(directory: Path, entry: dict, n: int, dim: int, k: int, base_queries: np.ndarray,
                    centres: int, fractions: list[float]) -> None:
    """Recall after appending vectors of new kinds, with the build's nprobe and after re-calibration."""
    if not entry["files"].get("vectors"):
        print(f"{'':>19}appends: exact index, nothing to calibrate")
        return
    base = np.concatenate(list(synthetic(n, dim, seed=1, centres=centres)))
    queries = np.concatenate([base_queries[: len(base_queries) // 2],
                              np.concatenate(list(synthetic(len(base_queries) // 2, dim, seed=4, centres=centres,
                                                            new_kinds=True)))])
    growth = modality.RECALIBRATE_GROWTH_PERCENT
    done = 0
    for fraction in fractions:
        target = int(n * fraction)
        extra = np.concatenate(list(synthetic(target - done, dim, seed=3 + target, centres=centres, new_kinds=True)))
        ids = [f"US{i:09d}-D00001" for i in range(n + done, n + target)]
        modality.RECALIBRATE_GROWTH_PERCENT = 10**9  # first as the index was calibrated at build time
        try:
            stale = append(directory, entry, ids, extra, entry["max_rowid"] + len(ids))
        finally:
            modality.RECALIBRATE_GROWTH_PERCENT = growth
        base = np.concatenate([base, extra])
        done = target
        stale_recall = _recall(ModalityIndex.open(directory, "visual", stale), base, queries, k)
        faiss = _faiss()
        index = faiss.read_index(str(directory / stale["files"]["index"]))
        fresh = modality._recalibrate_after_append(directory, dict(stale, count=stale["count"] - len(ids)), index,
                                                   stale["count"])
        if fresh is False:
            verdict = "recalibration misses the bar: figsearch index retrains (rebuilds)"
            entry = stale
        else:
            entry = dict(stale, **(fresh or {}))
            recal = _recall(ModalityIndex.open(directory, "visual", entry), base, queries, k)
            verdict = f"recalibrated nprobe {entry['nprobe']} (calibration recall {entry['calibrated_recall']:.3f}): recall@{k} {recal:.3f}"
        print(f"{'':>19}+{fraction:.0%} appended (half of new kinds): nprobe before {stale['nprobe']}: "
              f"recall@{k} {stale_recall:.3f}; {verdict}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--factory", default=None, help="FAISS factory string instead of the automatic plan")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--centres", type=int, default=2000, help="cluster centres of the synthetic data (more is harder)")
    parser.add_argument("--appends", type=float, nargs="*", default=[],
                        help="after the build, append these fractions of n (cumulative, half of new kinds) and "
                             "measure recall with the build's nprobe and after re-calibration, e.g. 0.1 0.5 1.0")
    args = parser.parse_args(argv)
    print(f"threads {os.environ.get('FIGSEARCH_FAISS_THREADS', '1')}, k={args.k}, {args.queries} queries, "
          f"{args.centres} cluster centres")
    start = time.perf_counter()
    for n in args.sizes:
        run(n, args.dim, args.k, args.queries, args.factory, args.workdir, args.centres, args.appends)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - start:.0f} s, peak RSS {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
