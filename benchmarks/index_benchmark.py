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

``--appends 0.1 0.5 1.0``: after the build, appends 10 %, 50 %, 100 % more vectors (cumulative;
half around as many new cluster centres, kinds the index was not trained on) and takes each step as
``figsearch index`` does (``figsearch.index.sync.append_or_rebuild``: append, re-calibrate, or
rebuild with retrained lists), then measures recall@50 of the queries (half of them of the new
kinds; printed per half), the calibration's promise, nprobe, latency and memory, beside the recall
of the same index appended to without re-calibration and the time of a full rebuild of the same
vectors (the step's own rebuild when it rebuilt). ``--compare-ladder`` also times the
re-calibration as it was before stop 26 on each appended index.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # index_scale_benchmark: the append step

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
        appends: list[float] | None = None, compare_ladder: bool = False) -> None:
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
        measure_appends(directory, entry, n, dim, k, q, centres, appends, compare_ladder=compare_ladder)
    for p in directory.iterdir():
        p.unlink()
    directory.rmdir()


def _recall(index: ModalityIndex, data: np.ndarray, queries: np.ndarray,
            k: int) -> tuple[float, list[float], list[float]]:
    """Recall@k of ``queries`` against exact search over ``data``, each query's seconds (one at a time) and recall."""
    faiss = _faiss()
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    _, truth = flat.search(queries, k)
    found, times = [], []
    for row, expected in zip(queries, truth):
        start = time.perf_counter()
        hits = index.search(row, k)
        times.append(time.perf_counter() - start)
        got = {int(f[2:11]) for f, _ in hits}
        found.append(len(got & set(expected.tolist())) / k)
    return float(np.mean(found)), times, found


def measure_appends(directory: Path, entry: dict, n: int, dim: int, k: int, base_queries: np.ndarray,
                    centres: int, fractions: list[float], rebuild_baseline: bool = True,
                    compare_ladder: bool = False) -> None:
    """Append fractions of n (cumulative, half of new kinds), each step as ``figsearch index`` takes it
    (index_scale_benchmark.append_step: append, re-calibrate, or rebuild with retrained lists), and
    measure recall@k of new queries (half of new kinds), latency and memory after it; beside the
    recall of the same index appended to without re-calibration and the time of a full rebuild."""
    from index_scale_benchmark import append_step

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
        modality.RECALIBRATE_GROWTH_PERCENT = 10**9  # first as the index was calibrated before: the baseline
        try:
            stale = append(directory, entry, ids, extra, entry["max_rowid"] + len(ids))
        finally:
            modality.RECALIBRATE_GROWTH_PERCENT = growth
        base = np.concatenate([base, extra])
        done = target
        stale_recall, _, _ = _recall(ModalityIndex.open(directory, "visual", stale), base, queries, k)
        ladder = _uncapped_recalibration(directory, entry, stale) if compare_ladder else ""
        step = append_step(directory, entry, ids, extra, dim)
        entry = step["entry"]
        index = ModalityIndex.open(directory, "visual", entry)
        index.search(queries[0], k)  # first touch of the memory maps
        got, times, each = _recall(index, base, queries, k)
        half = len(queries) // 2  # the first half are of the base data's kinds, the rest of new kinds
        p50, p95 = percentiles(times)
        in_memory = _faiss().serialize_index(index.index).nbytes / len(base)
        full, what = (step["rebuild"], "its own rebuild") if step["action"] == "rebuilt" else (None, "")
        if rebuild_baseline:  # from scratch: a step's own rebuild may reuse its refusal's calibration queries
            scratch = Path(tempfile.mkdtemp(dir=directory.parent))
            every_id = [f"US{i:09d}-D00001" for i in range(len(base))]
            chunks = ((every_id[s : s + 100_000], base[s : s + 100_000], s + 100_000)
                      for s in range(0, len(base), 100_000))
            start = time.perf_counter()
            build(scratch, "visual", key="bench", identity={}, dim=dim, plan=choose_plan(len(base), dim),
                  chunks=chunks, generation=1)
            full, what = time.perf_counter() - start, "a rebuild of the same vectors"
            for p in scratch.iterdir():
                p.unlink()
            scratch.rmdir()
        ratio = f"{step['seconds'] / full:.2f}x {what} ({full:.1f} s)" if full else "no rebuild timed"
        promised = entry.get("calibrated_recall")
        print(f"{'':>19}+{fraction:.0%} appended (half of new kinds; {len(base):,} vectors): {step['action']} in "
              f"{step['seconds']:.1f} s (append {step['append']:.1f}, re-calibrate {step['recalibrate']:.1f}, "
              f"rebuild {step['rebuild']:.1f} s; load {os.getloadavg()[0]:.1f}) = {ratio}; nprobe {entry['nprobe']}"
              f"{f' (calibrated recall {promised:.3f})' if promised is not None else ''}: recall@{k} {got:.3f} "
              f"(old kinds {np.mean(each[:half]):.3f}, new kinds {np.mean(each[half:]):.3f}) "
              f"against {stale_recall:.3f} un-recalibrated (nprobe {stale['nprobe']}); p50 {p50:.2f} ms, "
              f"p95 {p95:.2f} ms, {in_memory:.1f} B/vector in memory"
              + (f"\n{'':>21}rebuilt because {step['reason']}" if step["reason"] else "") + ladder, flush=True)


def _uncapped_recalibration(directory: Path, before: dict, stale: dict) -> str:
    """The re-calibration as it was before stop 26 (its ladder climbed up to the cap, then refused an nprobe
    over RETRAIN_NPROBE_FACTOR x the build's), timed on the same appended index: what the cap saves."""
    factor = modality.RETRAIN_NPROBE_FACTOR
    index = _faiss().read_index(str(directory / stale["files"]["index"]))
    modality.RETRAIN_NPROBE_FACTOR = 10**6  # no ladder cap
    try:
        start = time.perf_counter()
        result = modality._recalibrate_after_append(directory, before, index, stale["count"])
        seconds = time.perf_counter() - start
    finally:
        modality.RETRAIN_NPROBE_FACTOR = factor
    built = before.get("built_nprobe") or before["nprobe"]
    if isinstance(result, dict):
        verdict = (f"nprobe {result['nprobe']}: " + ("refused, over " if result["nprobe"] > factor * built else
                                                      "kept, within ") + f"{factor}x the build's {built}")
    else:
        verdict = "refused, the bar missed" if result else "no re-calibration"
    return f"\n{'':>21}the uncapped ladder (before stop 26) on the same index: {seconds:.1f} s, {verdict}"


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
                        help="after the build, append these fractions of n (cumulative, half of new kinds), each "
                             "step as figsearch index takes it (append, re-calibrate or rebuild), and measure recall, "
                             "latency and memory after it beside the un-recalibrated index and a full rebuild, "
                             "e.g. 0.1 0.5 1.0")
    parser.add_argument("--compare-ladder", action="store_true",
                        help="with --appends: also time the re-calibration as it was before stop 26 (ladder up to "
                             "the cap) on each appended index")
    args = parser.parse_args(argv)
    print(f"threads {os.environ.get('FIGSEARCH_FAISS_THREADS', '1')}, k={args.k}, {args.queries} queries, "
          f"{args.centres} cluster centres")
    start = time.perf_counter()
    for n in args.sizes:
        run(n, args.dim, args.k, args.queries, args.factory, args.workdir, args.centres, args.appends,
            args.compare_ladder)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - start:.0f} s, peak RSS {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
