"""The build on Ray against the local build, on a subset of the shared data, in one run.

    PYTHONPATH=src python benchmarks/ray_build_benchmark.py [--documents 6] [--skip-ocr]

Four builds of the same input, each in a fresh process and a fresh collection:

- local, 1 process (``--jobs 1``: decoding and OCR in the build's process, torch on one thread)
- local, 2 processes (``--jobs 2``: decoding and OCR in 2 worker processes, torch on 2 threads)
- Ray with 1 worker (a local Ray instance, ``ray.init(num_cpus=1)``)
- Ray with 2 workers (``ray.init(num_cpus=2)``)

Input: the first ``--documents`` folders of ``us-design-grants`` (their XML and TIFF sheets) and
the EP document ``EP1667425A1`` (drawings with reference numerals). The wall time of each build
(ingest, signs and links, embedding with the default encoders, indexes) is printed, with the
ratios the targets are about: Ray 2 workers vs Ray 1 worker (target >= 1.7x), and Ray vs local at
the same number of processes (target >= 0.9x). With Ray, the driver process still parses, links
and writes, so "1 worker" is the driver plus one worker process. The 1-minute load average is
printed before and after each build, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def inputs(documents: int) -> list[str]:
    grants = sorted(p for p in (SHARED / "us-design-grants").iterdir() if p.is_dir())[:documents]
    return [str(p) for p in grants] + [str(SHARED / "ep-documents" / "EP1667425A1")]


def one(mode: str, paths: list[str], collection: str, skip_ocr: bool) -> dict:
    """One build in this process; returns its seconds and counts."""
    import torch

    from figsearch.pipeline.building import build

    workers = int(mode[-1])
    # the encoders of a local build run in its own process with one thread per process allowed; on
    # Ray they run in the workers (one thread each, Ray's default) and the driver encodes nothing
    torch.set_num_threads(1 if mode.startswith("ray") else workers)
    started = time.perf_counter()
    cluster = None
    if mode.startswith("ray"):
        from figsearch.pipeline.distributed import RayCluster

        cluster = RayCluster("local", workers=workers)
    ready = time.perf_counter()
    stages, last = {}, [ready]

    def on_stage(name: str, _report) -> None:
        now = time.perf_counter()
        stages[name] = round(now - last[0], 2)
        last[0] = now

    report = build(paths, collection, jobs=workers, skip_ocr=skip_ocr, cluster=cluster, on_stage=on_stage)
    seconds = time.perf_counter() - started
    return {"mode": mode, "seconds": round(seconds, 2), "startup": round(ready - started, 2), "stages": stages,
            "documents": report.ingest.documents, "figures": report.ingest.figures,
            "signs": report.signs.signs if report.signs else None,
            "vectors": sum(e.embedded for e in report.index.embedded)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=6, help="design grants to build (plus one EP document)")
    parser.add_argument("--skip-ocr", action="store_true", help="leave out the reference signs")
    parser.add_argument("--modes", default="local1,local2,ray1,ray2")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--collection", help=argparse.SUPPRESS)
    args = parser.parse_args()
    paths = inputs(args.documents)
    if args.one:
        print(json.dumps(one(args.one, paths, args.collection, args.skip_ocr)))
        return
    if not (SHARED / "us-design-grants").is_dir():
        sys.exit(f"{SHARED} is absent: the benchmark needs ../shared/data")
    print(f"input: {args.documents} design grants + EP1667425A1, OCR {'off' if args.skip_ocr else 'on'}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as scratch:
        for mode in args.modes.split(","):
            load_before = os.getloadavg()[0]
            command = [sys.executable, __file__, "--one", mode, "--collection", str(Path(scratch) / mode),
                       "--documents", str(args.documents)] + (["--skip-ocr"] if args.skip_ocr else [])
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{mode} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["load"] = (round(load_before, 2), round(os.getloadavg()[0], 2))
            results[mode] = result
            print(json.dumps(result))
    print("\n| build | seconds | of which Ray start | ingest, signs, embed+index | load before, after |")
    print("|---|---|---|---|---|")
    for mode, result in results.items():
        stages = ", ".join(f"{result['stages'].get(name, 0):.1f}" for name in ("ingest", "signs", "index"))
        print(f"| {mode} | {result['seconds']:.1f} | {result['startup']:.1f} | {stages} | "
              f"{result['load'][0]}, {result['load'][1]} |")
    seconds = {mode: r["seconds"] for mode, r in results.items()}
    # a cluster is started once and serves many builds: the ratios also without its start
    working = {mode: r["seconds"] - r["startup"] for mode, r in results.items()}

    def ratio(slow: str, fast: str, what: str, target: float) -> None:
        if slow in seconds and fast in seconds:
            value, without = seconds[slow] / seconds[fast], working[slow] / working[fast]
            print(f"{what}: {value:.2f}x, without starting Ray {without:.2f}x (target >= {target}x)")

    ratio("ray1", "ray2", "Ray 2 workers vs 1", 1.7)
    ratio("local1", "ray1", "Ray 1 worker vs local 1 process (speed ratio)", 0.9)
    ratio("local2", "ray2", "Ray 2 workers vs local 2 processes (speed ratio)", 0.9)
    ratio("local1", "local2", "local 2 processes vs 1 (for reference)", 1.7)


if __name__ == "__main__":
    main()
