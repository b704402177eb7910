"""The build on Ray against the local build, on a subset of the shared data, in one run.

    PYTHONPATH=src python benchmarks/ray_build_benchmark.py [--documents 20[,6,all]] [--rounds 1] [--skip-ocr]

Four builds of the same input, each in a fresh process and a fresh collection:

- local, 1 process (``--jobs 1``: decoding and OCR in the build's process, torch on one thread)
- local, 2 processes (``--jobs 2``: decoding and OCR in 2 worker processes, torch on 2 threads)
- Ray with 1 worker (a local Ray instance, ``ray.init(num_cpus=1)``)
- Ray with 2 workers (``ray.init(num_cpus=2)``)

Input: the first ``--documents`` folders of ``us-design-grants`` (their XML and TIFF sheets) and
the EP document ``EP1667425A1`` (drawings with reference numerals); ``all``: the whole shared data
that has drawings (every design grant, both EP documents, both US applications); several sizes
separated by commas are measured one after the other. The wall time of each build (ingest, signs and links,
embedding with the default encoders, indexes) is printed, with the ratios the targets are about:
Ray 2 workers vs Ray 1 worker (target >= 1.7x), and Ray vs local at the same number of processes
(target >= 0.9x), each with "met" or "MISSED", with and without Ray's start (the time the driver
waited for the Ray instance it starts in the background). With Ray, the driver process still parses, links and writes, so "1 worker" is
the driver plus one worker process. Each build's JSON line also has the driver's CPU seconds, the
driver's waits for the workers (``driver_waits``) and each worker's seconds loading its models and
in each kind of call (``worker_seconds``, with each worker's niceness), and how many drawings the workers read and encoded while
ingesting and in the later stages: where the time goes; the report repeats them under the table. The 1-minute load average is
printed before and after each build, because the machine may be shared; ``--rounds N`` runs the
modes N times, interleaved, and reports each mode's median build.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def inputs(documents: int) -> list[str]:
    """The first ``documents`` design grants and EP1667425A1; ``documents=0``: the whole shared data
    that has drawings (every design grant, both EP documents, both US applications)."""
    grants = sorted(p for p in (SHARED / "us-design-grants").iterdir() if p.is_dir())
    if documents == 0:
        more = [p for folder in ("ep-documents", "us-applications") for p in sorted((SHARED / folder).iterdir())
                if p.is_dir()]
        return [str(p) for p in grants + more]
    return [str(p) for p in grants[:documents]] + [str(SHARED / "ep-documents" / "EP1667425A1")]


def describe(documents: int) -> str:
    return ("all design grants, both EP documents and both US applications" if documents == 0
            else f"{documents} design grants + EP1667425A1")


def one(mode: str, paths: list[str], collection: str, skip_ocr: bool) -> dict:
    """One build in this process; returns its seconds and counts."""
    import torch

    from figsearch.pipeline.building import build

    workers = int(mode[-1])
    # the encoders of a local build run in its own process with one thread per process allowed; on
    # Ray they run in the workers (one thread each, Ray's default) and the driver encodes nothing
    torch.set_num_threads(1 if mode.startswith("ray") else workers)
    before = resource.getrusage(resource.RUSAGE_SELF)
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

    try:
        report = build(paths, collection, jobs=workers, skip_ocr=skip_ocr, cluster=cluster, on_stage=on_stage)
    finally:
        if cluster is not None:
            cluster.close()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    driver_cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    waits = {name: round(value, 2) for name, value in (cluster.timings if cluster else {}).items()}
    # Ray starts in the background while the driver plans the input: what counts as Ray's start is
    # the time the driver spent waiting for it (creating the cluster object, then waiting in the build)
    startup = (ready - started) + (cluster.timings.get("wait for ray start", 0.0) if cluster else 0.0)
    return {"mode": mode, "seconds": round(seconds, 2), "startup": round(startup, 2), "stages": stages,
            "driver_cpu": round(driver_cpu, 2), "driver_waits": waits,
            "worker_seconds": cluster.worker_timings if cluster else [],
            "signs_read": dict(cluster.reads) if cluster else {},
            "drawings_encoded": dict(cluster.encoded) if cluster else {},
            "documents": report.ingest.documents, "figures": report.ingest.figures,
            "signs": report.signs.signs if report.signs else None,
            "vectors": sum(e.embedded for e in report.index.embedded)}


def run_mode(mode: str, documents: int, scratch: str, skip_ocr: bool) -> dict:
    load_before = os.getloadavg()[0]
    command = [sys.executable, __file__, "--one", mode, "--collection", str(Path(scratch) / f"{mode}-{documents}"),
               "--documents", str(documents)] + (["--skip-ocr"] if skip_ocr else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{mode} failed (exit status {done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    shutil.rmtree(Path(scratch) / f"{mode}-{documents}", ignore_errors=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = (round(load_before, 2), round(os.getloadavg()[0], 2))
    return result


def report(documents: int, skip_ocr: bool, runs: dict[str, list[dict]]) -> None:
    """The table and the ratios of one input size; with several rounds, each mode's median build."""
    results = {mode: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for mode, rs in runs.items()}
    first = next(iter(results.values()))
    print(f"\ninput: {describe(documents)} ({first['documents']} documents, {first['figures']} "
          f"figures, {first['vectors']} vectors), OCR {'off' if skip_ocr else 'on'}, "
          f"{len(next(iter(runs.values())))} round(s), median build per mode; "
          f"1-minute load average {min(r['load'][0] for r in results.values())} to "
          f"{max(r['load'][1] for r in results.values())}")
    print("\n| build | seconds | of which Ray start | ingest, signs, embed+index | driver CPU s | load before, after |")
    print("|---|---|---|---|---|---|")
    for mode, result in results.items():
        stages = ", ".join(f"{result['stages'].get(name, 0):.1f}" for name in ("ingest", "signs", "index"))
        print(f"| {mode} | {result['seconds']:.1f} | {result['startup']:.1f} | {stages} | {result['driver_cpu']:.1f} | "
              f"{result['load'][0]}, {result['load'][1]} |")
    seconds = {mode: r["seconds"] for mode, r in results.items()}
    # a cluster is started once and serves many builds: the ratios also without its start
    working = {mode: r["seconds"] - r["startup"] for mode, r in results.items()}

    def ratio(slow: str, fast: str, what: str, target: float | None) -> None:
        if slow in seconds and fast in seconds:
            value, without = seconds[slow] / seconds[fast], working[slow] / working[fast]
            goal = (f" (target >= {target}x: {'met' if value >= target else 'MISSED'}; without the start "
                    f"{'met' if without >= target else 'MISSED'})") if target else ""
            print(f"{what}: {value:.2f}x, without starting Ray {without:.2f}x{goal}")

    ratio("ray1", "ray2", "Ray 2 workers vs 1", 1.7)
    ratio("local1", "ray1", "Ray 1 worker vs local 1 process (speed ratio)", 0.9)
    ratio("local2", "ray2", "Ray 2 workers vs local 2 processes (speed ratio)", 0.9)
    ratio("local1", "local2", "local 2 processes vs 1 (for reference)", None)
    for mode, result in results.items():
        if mode.startswith("ray"):
            print(f"{mode}: signs read {result['signs_read']}, drawings encoded {result['drawings_encoded']}, "
                  f"driver waits {result['driver_waits']}")
            for n, worker in enumerate(result["worker_seconds"]):
                print(f"  worker {n}: {worker}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", default="20",
                        help="design grants to build (plus one EP document); several sizes: 6,20; 'all' (or 0): "
                             "the whole shared data with drawings (all design grants, EP documents, US applications)")
    parser.add_argument("--skip-ocr", action="store_true", help="leave out the reference signs")
    parser.add_argument("--modes", default="local1,local2,ray1,ray2")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the modes this many times, interleaved; each mode's median build is reported")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--collection", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [0 if n == "all" else int(n) for n in args.documents.split(",")]
    if args.one:
        print(json.dumps(one(args.one, inputs(sizes[0]), args.collection, args.skip_ocr)))
        return
    if not (SHARED / "us-design-grants").is_dir():
        sys.exit(f"{SHARED} is absent: the benchmark needs ../shared/data")
    modes = args.modes.split(",")
    all_runs = {}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as scratch:
        for documents in sizes:
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    result = run_mode(mode, documents, scratch, args.skip_ocr)
                    runs[mode].append(result)
                    print(json.dumps({"grants": documents, **result}), flush=True)
            all_runs[documents] = runs
    for documents, runs in all_runs.items():
        report(documents, args.skip_ocr, runs)


if __name__ == "__main__":
    main()
