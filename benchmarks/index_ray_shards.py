"""Adding a big index's vectors in shards: in this process, in a process pool, and as Ray tasks (issue 16).

What the build parallelises at 10^6+ vectors is the adding (each vector assigned to its list and
encoded); training stays on a sample, in the driver. This benchmark trains one index of the plan
``figsearch`` picks for ``--n`` vectors (``choose_plan``; ``--factory`` overrides), then adds the
same vectors to copies of it, timing only the adding and the merge, with each executor of
``figsearch.index.shards.add_vectors``:

- ``local1``: one sequential add in this process (a build without ``FIGSEARCH_INDEX_WORKERS``);
- ``pool2``: 2 shard processes (``FIGSEARCH_INDEX_WORKERS=2``, what the local build can use);
- ``ray1`` / ``ray2``: the Ray build's executor (``pipeline.ray_shards``: Ray tasks fed the trained
  index and each shard's vectors through the object store), on a local Ray instance of 1 and 2
  CPUs, started for the run (its start timed apart).

Every executor's index must answer 100 queries exactly as ``local1``'s (checked; the run fails
otherwise). Prints the wall and CPU seconds of each and the ratios: Ray 2 vs Ray 1 (the speed-up
over Ray workers), Ray 2 vs pool 2 (Ray's overhead), pool 2 vs local 1.

    python benchmarks/index_ray_shards.py --n 1000000 --modes local1,pool2,ray1,ray2

Data: the clustered set of ``index_scale_benchmark.py`` (same generator), 256-d, float16 on disk
as the build writes it. Needs ``pip install 'figsearch[ray]'`` for the Ray modes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from figsearch.index import shards
from figsearch.index.modality import _faiss, _train
from figsearch.index.plan import choose_plan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_scale_benchmark import stream  # noqa: E402  (the same data as the index benchmark)


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--factory", default=None, help="default: the plan figsearch picks for --n vectors")
    parser.add_argument("--modes", default="local1,pool2,ray1,ray2")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    faiss = _faiss()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="figsearch-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = choose_plan(args.n, args.dim, factory=args.factory)
    print(f"load average at start {os.getloadavg()[0]:.1f}; {args.n:,} x {args.dim} clustered vectors, "
          f"plan {plan.factory}, workdir {work}", flush=True)

    path = work / "vectors.f16"
    if not path.exists() or path.stat().st_size != args.n * args.dim * 2:
        with open(path, "wb") as out:
            for chunk in stream("clustered", args.n, args.dim, seed=7, dtype="<f2", workers=2):
                out.write(chunk.tobytes())
    vectors = np.memmap(path, dtype="<f2", mode="r", shape=(args.n, args.dim))
    trained_file = work / f"trained-{plan.factory.replace(',', '_')}.faiss"
    if not trained_file.exists():
        started = time.perf_counter()
        index = faiss.index_factory(args.dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
        sample = np.ascontiguousarray(vectors[np.random.default_rng(1).choice(args.n, min(args.n, plan.train_size),
                                                                               replace=False)], dtype=np.float32)
        _train(faiss, index, sample)
        faiss.write_index(index, str(trained_file))
        print(f"trained on {len(sample):,} vectors in {time.perf_counter() - started:.1f} s", flush=True)
    queries = np.ascontiguousarray(vectors[:: max(1, args.n // 100)][:100], dtype=np.float32)

    results: dict[str, dict] = {}
    reference = None
    for mode in modes:
        index = faiss.read_index(str(trained_file))
        workers = int(mode[-1])
        ray = None
        start_seconds = 0.0
        map_shards = None
        if mode.startswith("ray"):
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING",
                     runtime_env={"env_vars": {"OMP_THREAD_LIMIT": "1"}})
            start_seconds = time.perf_counter() - started
            from figsearch.pipeline.ray_shards import shards_on_ray

            def map_shards(fn, tasks, ray=ray, workers=workers):
                return shards_on_ray(ray, tasks, in_flight=workers)
        elif mode.startswith("pool") and workers < 2:
            raise SystemExit("pool modes need 2 or more workers")
        load = os.getloadavg()[0]
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        shards.add_vectors(faiss, index, path, "<f2", args.n, args.dim,
                           workers=workers if not mode.startswith("local") else 1, map_shards=map_shards, scratch=work)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        children = _children_cpu() - children
        if ray is not None:
            ray.shutdown()
        index.nprobe = 32
        found = index.search(queries, 50)[1]
        if reference is None:
            reference = found
        same = bool(np.array_equal(found, reference))
        results[mode] = {"wall": wall, "start": start_seconds, "driver_cpu": cpu, "children_cpu": children, "same": same}
        print(f"{mode}: adding + merge {wall:.1f} s (driver CPU {cpu:.1f} s, pool processes {children:.1f} s)"
              + (f", Ray start {start_seconds:.1f} s" if ray is not None else "")
              + f", load {load:.1f} -> {os.getloadavg()[0]:.1f}; same top 50 as {modes[0]}: {same}", flush=True)
        del index
    if not all(r["same"] for r in results.values()):
        print("an executor's index differs from the others'", file=sys.stderr)
        return 1

    def ratio(a: str, b: str, with_start: bool = False) -> str:
        if a not in results or b not in results:
            return "not measured"
        slow = results[a]["wall"] + (results[a]["start"] if with_start else 0)
        fast = results[b]["wall"] + (results[b]["start"] if with_start else 0)
        return f"{slow / fast:.2f}x"

    print(f"speed-up of the adding over Ray workers, ray2 vs ray1: {ratio('ray1', 'ray2')} "
          f"({ratio('ray1', 'ray2', True)} with Ray's start)")
    print(f"Ray vs processes, pool2 time / ray2 time: {ratio('pool2', 'ray2')}")
    print(f"processes, local1 / pool2: {ratio('local1', 'pool2')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
