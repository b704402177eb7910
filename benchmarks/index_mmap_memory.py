"""Index files shared between server workers (issue 15): resident memory of a process that opens an
index memory-mapped (``ModalityIndex.open``, as the server does) against one that reads it into memory.

    nice -n 10 python benchmarks/index_mmap_memory.py --n 200000 --factories Flat IVF1024,PQ32 IVF1024,PQ64x4fs

For each index-factory string, ``n`` synthetic 256-d unit vectors (the ``clustered`` set of
benchmarks/index_scale_benchmark.py) are built into an index with ``figsearch.index.modality.build``;
then, in fresh child processes, the index is opened mapped or copied and searched ``--queries``
times on one thread. Printed per process: growth of anonymous RSS (private to the process: what
each worker adds) and of file-backed RSS (page cache of the mapped files, shared between all
workers that map them) after opening and after the queries; and the one-thread latency of the
mapped index interleaved query by query with the copied one, as a ratio (the same run, so the
machine's load affects both alike).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_scale_benchmark import chunks_of, stream  # noqa: E402

from figsearch.index import modality  # noqa: E402
from figsearch.index.plan import choose_plan  # noqa: E402


def _rss() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def child(directory: Path, how: str, queries_path: Path) -> None:
    modality._faiss()
    entry = json.loads((directory / "entry.json").read_text())
    queries = np.load(queries_path)
    if how == "copied":  # the index file read into memory, as before indexes were opened mapped
        modality._read_shared = lambda faiss_, path: (faiss_.read_index(str(path)), False)
    before = _rss()
    index = modality.ModalityIndex.open(directory, "visual", entry)
    opened = _rss()
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search(q, 50)
        times.append(time.perf_counter() - start)
    after = _rss()
    print(json.dumps({"how": how, "mapped": index.mapped, "before": before, "opened": opened, "after": after,
                      "times": times}))


def interleaved(directory: Path, queries: np.ndarray) -> tuple[float, float, float]:
    """p50 of the mapped and the copied index searched alternately in one process, and their ratio."""
    faiss = modality._faiss()
    entry = json.loads((directory / "entry.json").read_text())
    mapped = modality.ModalityIndex.open(directory, "visual", entry)
    copied = modality.ModalityIndex.open(directory, "visual", entry)
    copied.index = faiss.read_index(str(directory / entry["files"]["index"]))
    modality._set_nprobe(copied.index, entry["nprobe"])
    for q in queries[:20]:
        mapped.search(q, 50), copied.search(q, 50)
    a, b = [], []
    for q in queries:
        for index, out in ((mapped, a), (copied, b)):
            start = time.perf_counter()
            index.search(q, 50)
            out.append(time.perf_counter() - start)
    pa, pb = float(np.median(a)) * 1000, float(np.median(b)) * 1000
    return pa, pb, pa / pb


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--factories", nargs="+", default=["Flat", "IVF1024,PQ32", "IVF1024,PQ64x4fs"])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average at start {load[0]:.2f} on {os.cpu_count()} cores; n={args.n:,} dim={args.dim}", flush=True)
    queries = np.concatenate(list(stream("clustered", args.queries, args.dim, seed=2)))
    env = dict(os.environ, FIGSEARCH_FAISS_THREADS="1", OMP_NUM_THREADS="1")
    for factory in args.factories:
        directory = Path(tempfile.mkdtemp(prefix="mmap-", dir=args.workdir))
        try:
            entry = modality.build(directory, "visual", key="bench", identity={}, dim=args.dim,
                                   plan=choose_plan(args.n, args.dim, factory=factory),
                                   chunks=chunks_of("clustered", args.n, args.dim, seed=1), generation=1)
            (directory / "entry.json").write_text(json.dumps(entry))
            np.save(directory / "queries.npy", queries)
            size = (directory / entry["files"]["index"]).stat().st_size
            print(f"{factory}: index file {size / 2**20:.1f} MiB, nprobe {entry['nprobe']}", flush=True)
            for how in ("mapped", "copied"):
                out = subprocess.run([sys.executable, __file__, "--child", str(directory), how,
                                      str(directory / "queries.npy")], env=env, check=True, capture_output=True,
                                     text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                anon_open = (r["opened"]["RssAnon"] - r["before"]["RssAnon"]) / 2**20
                anon_after = (r["after"]["RssAnon"] - r["before"]["RssAnon"]) / 2**20
                file_open = (r["opened"]["RssFile"] - r["before"]["RssFile"]) / 2**20
                file_after = (r["after"]["RssFile"] - r["before"]["RssFile"]) / 2**20
                p50 = float(np.median(r["times"])) * 1000
                print(f"  {how:6s} (codes mapped: {r['mapped']}): private (anonymous) +{anon_open:.1f} MiB after "
                      f"opening, +{anon_after:.1f} MiB after {len(r['times'])} queries; shared (file pages) "
                      f"+{file_open:.1f} / +{file_after:.1f} MiB; p50 {p50:.2f} ms", flush=True)
            pa, pb, ratio = interleaved(directory, queries)
            print(f"  interleaved one-thread p50: mapped {pa:.2f} ms, copied {pb:.2f} ms, ratio {ratio:.2f}", flush=True)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average at end {load[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
