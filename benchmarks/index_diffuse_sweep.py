"""Where IVF-PQ loses recall on diffuse data: recall@k by nprobe × re-ranking candidates (issue 16).

    nice -n 10 python benchmarks/index_diffuse_sweep.py --n 1000000 --nlist 4096 \\
        --factories IVF4096,PQ64x4fs IVF4096_HNSW32,PQ64x4fs --ef 0 2 --nprobe 64 205 512 \\
        --k 5 50 --candidates 200 500 1000 2000 5000

``n`` vectors of a data set of benchmarks/index_scale_benchmark.py (default ``diffuse``) as float16
(``--cache FILE`` keeps them, and their exact neighbours, for the next run); ground truth by exact
search; each factory trained on ``40·nlist`` sampled vectors, the coarse centroids by two-level
k-means as figsearch trains its big plans (figsearch.index.modality._train). Then for each nprobe,
200 fresh queries are searched one at a time, the ``max(--candidates)`` best by the codes fetched,
and for each candidate count their prefix re-ranked with the float16 vectors as figsearch does:
recall@k printed for each ``--k``.

**The far tail at a tenth of the size.** At 10^7 vectors the 50th neighbour is as rare (5·10^-6 of
the vectors closer) as the 5th at 10^6: recall@5 at 10^6 with a tenth of the candidates and the
same share of the lists stands for recall@50 at 10^7, for a tenth of the cost.

``--ef F``: with an HNSW coarse quantizer, search it with efSearch = F × nprobe (0: FAISS's
default, 16, what figsearch searched with before stop 17). Also printed: **partition recall**, the
share of the true neighbours whose list (as assigned when added) is among the query's exact
nearest nprobe centroids — what any number of candidates could at most find. If recall grows with
candidates at a fixed nprobe, the codes' ranking loses neighbours that were in the probed lists; if
only with nprobe, the partition; if it stays under the partition recall whatever the candidates,
the lists probed are not the nearest (the HNSW search).
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

from figsearch.index.calibrate import exact_neighbours  # noqa: E402
from figsearch.index.modality import _faiss  # noqa: E402


def _train(faiss, factory: str, nlist: int, sample: np.ndarray):
    from faiss.contrib.clustering import two_level_clustering

    index = faiss.index_factory(sample.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.extract_index_ivf(index)
    centroids, _ = two_level_clustering(sample, int(np.sqrt(nlist)), nlist, clustering_niter=10)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    ivf.quantizer.add(centroids)
    index.train(sample)
    return index, ivf, centroids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=sorted(DATA), default="diffuse")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--nlist", type=int, default=4096)
    parser.add_argument("--factories", nargs="+", default=["IVF4096,PQ64x4fs", "IVF4096_HNSW32,PQ64x4fs"])
    parser.add_argument("--ef", type=float, nargs="+", default=[0, 2], help="HNSW efSearch = F × nprobe (0: FAISS's 16)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[64, 205, 512])
    parser.add_argument("--k", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--candidates", type=int, nargs="+", default=[200, 500, 1000, 2000, 5000])
    parser.add_argument("--cache", type=Path, default=None, help="float16 vectors file kept between runs")
    args = parser.parse_args()
    faiss = _faiss()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.data} n={args.n:,} nlist={args.nlist}", flush=True)
    if args.cache and args.cache.exists():
        x = np.fromfile(args.cache, dtype="<f2").reshape(args.n, 256)
    else:
        x = np.concatenate(list(stream(args.data, args.n, 256, seed=1, dtype="<f2")))
        if args.cache:
            x.tofile(args.cache)
    queries = np.concatenate(list(stream(args.data, 200, 256, seed=2)))
    truth_path = args.cache.with_suffix(".truth.npy") if args.cache else None
    if truth_path and truth_path.exists():
        truth = np.load(truth_path)
    else:
        truth = exact_neighbours(faiss, x, queries, max(args.k))
        if truth_path:
            np.save(truth_path, truth)
    rng = np.random.default_rng(0)
    sample = x[np.sort(rng.choice(args.n, min(args.n, 40 * args.nlist), replace=False))].astype(np.float32)
    for factory in args.factories:
        start = time.time()
        index, ivf, centroids = _train(faiss, factory, args.nlist, sample)
        trained = time.time() - start
        for s in range(0, args.n, 100_000):
            index.add(x[s : s + 100_000].astype(np.float32))
        print(f"{factory}: train {trained:.0f} s, add {time.time() - start - trained:.0f} s", flush=True)
        flat = faiss.IndexFlatIP(256)
        flat.add(centroids)
        _, ranked = flat.search(queries, args.nlist)
        rank = np.empty_like(ranked)
        for i, row in enumerate(ranked):
            rank[i, row] = np.arange(args.nlist)
        kmax = max(args.k)
        _, lists = ivf.quantizer.search(np.ascontiguousarray(x[truth.ravel()], dtype=np.float32), 1)
        where = rank[np.repeat(np.arange(len(queries)), kmax), lists[:, 0]].reshape(len(queries), kmax)
        for k in args.k:
            print(f"  partition recall@{k} by nprobe: " + ", ".join(
                f"{p}: {(where[:, :k] < p).mean():.3f}" for p in args.nprobe), flush=True)
        hnsw = isinstance(faiss.downcast_index(ivf.quantizer), faiss.IndexHNSW)
        for ef in args.ef if hnsw else [0]:
            for nprobe in args.nprobe:
                ivf.nprobe = nprobe
                if hnsw:
                    faiss.downcast_index(ivf.quantizer).hnsw.efSearch = int(ef * nprobe) if ef else 16
                got = {(k, c): [] for k in args.k for c in args.candidates}
                cpu = []
                for q, expected in zip(queries, truth):
                    start = time.thread_time()
                    _, found = index.search(q[None], max(args.candidates))
                    cpu.append(time.thread_time() - start)
                    found = found[0]
                    for c in args.candidates:
                        positions = np.unique(found[:c][found[:c] >= 0])
                        best = positions[np.argsort(-(x[positions].astype(np.float32) @ q))]
                        for k in args.k:
                            got[k, c].append(len(set(best[:k].tolist()) & set(expected[:k].tolist())) / k)
                label = f"efSearch {int(ef * nprobe) if ef else 16}, " if hnsw else ""
                print(f"  {label}nprobe {nprobe} (codes search CPU p50 {np.median(cpu) * 1000:.1f} ms): " + "; ".join(
                    f"recall@{k} " + " ".join(f"{c}:{np.mean(got[k, c]):.3f}" for c in args.candidates)
                    for k in args.k), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
