"""Where IVF-PQ loses recall on diffuse data: recall@50 by nprobe × re-ranking candidates (issue 16).

    nice -n 10 python benchmarks/index_diffuse_sweep.py --n 300000 --nlist 2048 --factories IVF2048,PQ64x4fs IVF2048,PQ32np

``n`` vectors of a data set of benchmarks/index_scale_benchmark.py (default ``diffuse``) in memory as
float16; ground truth by exact search; each factory trained on ``40·nlist`` sampled vectors (one
level k-means, one thread); then for each nprobe and candidate count, 300 fresh queries are
searched one at a time, the candidates re-ranked with the float16 vectors as figsearch does, and
recall@50 and one-thread latency printed. If recall grows with candidates at a fixed nprobe, the
codes' ranking loses neighbours that were in the probed lists; if only with nprobe, the partition.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_scale_benchmark import DATA, stream  # noqa: E402

from figsearch.index.modality import _faiss  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(DATA), default="diffuse")
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--nlist", type=int, default=2048)
    parser.add_argument("--factories", nargs="+", default=["IVF2048,PQ64x4fs", "IVF2048,PQ32np"])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--candidates", type=int, nargs="+", default=[400, 1000, 3000])
    args = parser.parse_args()
    faiss = _faiss()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.data} n={args.n:,} nlist={args.nlist}", flush=True)
    x = np.concatenate(list(stream(args.data, args.n, 256, seed=1))).astype(np.float16)
    queries = np.concatenate(list(stream(args.data, 300, 256, seed=2)))
    flat = faiss.IndexFlatIP(256)
    for s in range(0, args.n, 100_000):
        flat.add(x[s : s + 100_000].astype(np.float32))
    _, truth = flat.search(queries, 50)
    del flat
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(args.n, min(args.n, 40 * args.nlist), replace=False))].astype(np.float32)
    for factory in args.factories:
        index = faiss.index_factory(256, factory, faiss.METRIC_INNER_PRODUCT)
        start = time.time()
        index.train(sample)
        trained = time.time() - start
        for s in range(0, args.n, 50_000):
            index.add(x[s : s + 50_000].astype(np.float32))
        print(f"{factory}: train {trained:.0f} s, add {time.time() - start - trained:.0f} s", flush=True)
        ivf = faiss.extract_index_ivf(index)
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            for wanted in args.candidates:
                found, times = [], []
                for q, expected in zip(queries, truth):
                    start = time.perf_counter()
                    _, c = index.search(q[None], wanted)
                    positions = np.unique(c[0][c[0] >= 0])
                    best = positions[np.argsort(-(x[positions].astype(np.float32) @ q))[:50]]
                    times.append(time.perf_counter() - start)
                    found.append(len(set(best.tolist()) & set(expected.tolist())) / 50)
                p50, p95 = np.percentile(times, [50, 95]) * 1000
                print(f"  nprobe {nprobe} candidates {wanted}: recall@50 {np.mean(found):.3f}, "
                      f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
