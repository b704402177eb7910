"""Ingest speed: one worker against N workers, and an unchanged rerun, in the same run.

    python benchmarks/ingest_speed.py ../shared/data --jobs 2

Prints wall and CPU seconds per configuration and the ratios against the one-worker
baseline measured here (never against a number from another machine). Collections are
built under a temporary folder and removed afterwards.
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



def cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def measure(collection: Path, paths: list[Path], jobs: int) -> tuple[float, float, dict]:
    """One ``figsearch ingest`` in a subprocess, so its workers' CPU time is counted too."""
    command = [sys.executable, "-m", "figsearch", "ingest", *map(str, paths), "-c", str(collection),
               "-j", str(jobs), "--json", "--quiet", "--skip-ocr"]
    wall, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - wall, cpu_seconds() - cpu, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-serial", action="store_true", help="no one-worker baseline (saves time)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="figsearch-ingest-bench-"))
    try:
        rows = []
        if not args.skip_serial:
            rows.append(("1 worker", *measure(scratch / "serial", args.paths, 1)))
        rows.append((f"{args.jobs} workers", *measure(scratch / "parallel", args.paths, args.jobs)))
        rows.append(("rerun, unchanged", *measure(scratch / "parallel", args.paths, args.jobs)))
        base = rows[0][1]
        print(f"{'configuration':18} {'wall s':>8} {'cpu s':>8} {'vs first':>9}  documents figures failures skipped")
        for name, wall, cpu, summary in rows:
            print(f"{name:18} {wall:8.1f} {cpu:8.1f} {wall / base:8.2f}×  {summary['documents']:9} "
                  f"{summary['figures']:7} {summary['failures']:8} {summary['skipped_unchanged']:7}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
