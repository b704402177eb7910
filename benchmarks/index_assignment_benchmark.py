"""How the add's assignment rule places vectors, on a built IVF index with an HNSW coarse quantizer (stop 18).

    python benchmarks/index_assignment_benchmark.py /tmp/idx21/big/diffuse-10000000

reads a run directory of benchmarks/index_scale_benchmark.py (``index/`` with its manifest, index
file and float16 vectors; ``queries.npy`` and ``truth.npy``: the timed fresh queries — the last
three quarters of ``queries.npy`` — and their exact 50 nearest positions) and prints, for each rule
of ``figsearch.index.shards.assigning`` (``exact``: a flat scan of the centroids; ``hnsw-efN``:
FAISS's graph search with efSearch N):

- the share of the true neighbours that the rule puts in their nearest list;
- the CPU time of the assignment per vector (``--sample`` random stored vectors, one thread);
- the partition recall@50 at ``--nprobe`` lists: the share of the true neighbours whose list, as
  the rule assigns it, is among the lists a query probes (the HNSW graph searched as
  ``calibrate.set_nprobe`` sets it). End-to-end recall is at most this, less what the 4-bit codes
  lose in ranking (at 10^7 diffuse, stop 17: partition 0.949, end to end 0.941 at nprobe 1,638).

Only the neighbours' rows are read, so it takes a minute at 10^7 (the index file: ~0.5 GB RAM).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from figsearch.index.calibrate import set_nprobe
from figsearch.index.modality import _faiss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run directory: index/, queries.npy, truth.npy")
    parser.add_argument("--efs", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1024, 1638, 2048])
    parser.add_argument("--sample", type=int, default=20_000, help="stored vectors timed per rule")
    args = parser.parse_args(argv)
    faiss = _faiss()
    directory = args.run / "index"
    entry = json.loads((directory / "manifest.json").read_text())["modalities"]["visual"]
    n, dim = entry["count"], entry["dim"]
    vectors = np.memmap(directory / entry["files"]["vectors"], dtype=entry["vector_dtype"] or "<f4", mode="r",
                        shape=(n, dim))
    queries = np.load(args.run / "queries.npy")
    queries = queries[len(queries) // 4 :]
    truth = np.load(args.run / "truth.npy")
    index = faiss.read_index(str(directory / entry["files"]["index"]))
    quantizer = faiss.downcast_index(faiss.extract_index_ivf(index).quantizer)
    if not isinstance(quantizer, faiss.IndexHNSW):
        raise SystemExit("this index's coarse quantizer is flat: every vector is already in its nearest list")
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
    flat = faiss.IndexFlat(dim, quantizer.metric_type)
    flat.add(centroids)
    neighbours = np.asarray(vectors[truth.ravel()], dtype=np.float32)
    rng = np.random.default_rng(0)
    sample = np.asarray(vectors[np.sort(rng.choice(n, min(n, args.sample), replace=False))], dtype=np.float32)
    print(f"{args.run}: {n:,} x {dim}, {quantizer.ntotal:,} lists, {len(queries)} queries x {truth.shape[1]} "
          f"neighbours; load average {os.getloadavg()[0]:.1f}", flush=True)
    rules: dict[str, np.ndarray] = {}
    _, nearest = flat.search(neighbours, 1)
    nearest = nearest[:, 0]
    for rule in ["exact"] + [f"hnsw-ef{ef}" for ef in args.efs]:
        searcher = flat
        if rule != "exact":
            quantizer.hnsw.efSearch = int(rule[len("hnsw-ef"):])
            searcher = quantizer
        _, lists = searcher.search(neighbours, 1)
        rules[rule] = lists[:, 0]
        cpu = time.process_time()
        searcher.search(sample, 1)
        per_vector = (time.process_time() - cpu) / len(sample)
        print(f"{rule}: {np.mean(rules[rule] == nearest):.3f} of the neighbours in their nearest list; "
              f"{per_vector * 1e6:.0f} us CPU a vector ({per_vector * 1e6:.0f} CPU s per 10^6)", flush=True)
    for nprobe in args.nprobe:
        set_nprobe(faiss, index, nprobe)
        _, probed = quantizer.search(np.ascontiguousarray(queries, dtype=np.float32), nprobe)
        cover = {rule: float(np.mean([np.isin(lists.reshape(len(queries), -1)[i], probed[i]).mean()
                                      for i in range(len(queries))])) for rule, lists in rules.items()}
        print(f"nprobe {nprobe} (efSearch {quantizer.hnsw.efSearch}): partition recall@{truth.shape[1]} "
              + ", ".join(f"{rule} {value:.3f}" for rule, value in cover.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
