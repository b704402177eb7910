"""Build speed: the overlapped build against the stages in turn, in the same run.

    python benchmarks/build_speed.py ../shared/data/us-design-grants --jobs 2 [--serial] [--limit N]

Each configuration builds a fresh collection in its own Python process (so no configuration
starts with another's imports warm):

- ``stages in turn``: the default build, main's code path, with ``--jobs`` workers (``build(..., overlap=False)``):
  ingest, then reading the signs, then embedding and indexing. Each stage runs alone there, so
  its time is the "stage alone" time;
- ``overlapped``: ``build(..., overlap=True)`` (figsearch.pipeline.overlapped): ingest, reading and embedding at once;
- ``one process`` (``--serial``): ``-j 1``.

Prints drawings/s end to end for each (drawings = the figures indexed, sheets cut into their
figures), each stage's rate alone, the ratio overlapped / slowest stage alone and the speed-up
over the stages in turn, with the load average (``os.getloadavg``) before and after each run
(the machine may be shared). Then checks that the overlapped build gave the same collection as
the stages in turn (every table and stored file; vectors within 1e-6). Collections are built
under a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_DRIVER = r"""
import json, os, sys, time
from figsearch.pipeline.building import build
marks = []
start = time.perf_counter()
def on_stage(name, report):
    marks.append((name, time.perf_counter() - start))
paths, root, jobs, overlap = json.loads(sys.argv[1])
report = build(paths, root, jobs=jobs, overlap=overlap, on_stage=on_stage)
total = time.perf_counter() - start
visual = [e for e in report.index.embedded if e.modality == "visual"][0]
print(json.dumps({"marks": marks, "total": total, "drawings": visual.embedded + visual.unchanged,
                  "sheets": report.ingest.figures, "documents": report.ingest.documents}))
"""


def run(paths: list[str], root: Path, jobs: int, overlap: bool) -> dict:
    load_before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps([paths, str(root), jobs, overlap])],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"build failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = (load_before, os.getloadavg()[0])
    stages, previous = {}, 0.0
    for name, at in result["marks"]:
        stages[name] = at - previous
        previous = at
    result["stages"] = stages
    return result


def same_collection(reference: Path, other: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import numpy as np
    import sqlite3

    from collection_check import compare, snapshot

    def vectors(root: Path) -> dict:
        db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
        try:
            return {(f, m, e): np.frombuffer(v, np.float32)
                    for f, m, e, v in db.execute("SELECT figure_id, modality, encoder, vector FROM embeddings")}
        finally:
            db.close()

    ref, got = snapshot(reference), snapshot(other)
    ref.tables.pop("embeddings", None), got.tables.pop("embeddings", None)
    difference = compare(ref, got)
    a, b = vectors(reference), vectors(other)
    if a.keys() != b.keys():
        return f"different vectors stored ({len(a)} vs {len(b)})"
    worst = max((float(np.abs(a[k] - b[k]).max()) for k in a), default=0.0)
    return f"tables and files: {difference}; {len(a)} vectors, largest difference {worst:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--serial", action="store_true", help="also the one-process build (-j 1)")
    parser.add_argument("--limit", type=int, default=0,
                        help="only the first N entries of each folder given (sorted): a quicker run")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="figsearch-build-bench-"))
    try:
        paths = []
        for path in args.paths:
            if args.limit and path.is_dir():
                entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))[: args.limit]
                paths += [str(p.resolve()) for p in entries]
            else:
                paths.append(str(path.resolve()))
        results = {}
        results["overlapped"] = run(paths, scratch / "overlapped", args.jobs, True)
        results["stages in turn"] = run(paths, scratch / "in-turn", args.jobs, False)
        if args.serial:
            results["one process"] = run(paths, scratch / "serial", 1, False)
        drawings = results["overlapped"]["drawings"]
        print(f"{results['overlapped']['documents']} documents, {results['overlapped']['sheets']} sheets ingested, "
              f"{drawings} drawings indexed; {args.jobs} jobs on {os.cpu_count()} CPUs")
        print("| build | wall s | drawings/s | load avg before → after |")
        print("|---|---|---|---|")
        for name, r in results.items():
            print(f"| {name} (-j {1 if name == 'one process' else args.jobs}) | {r['total']:.1f} | "
                  f"{r['drawings'] / r['total']:.2f} | {r['load'][0]:.1f} → {r['load'][1]:.1f} |")
        alone = results["stages in turn"]["stages"]
        print("| stage alone (stages in turn) | wall s | drawings/s |")
        print("|---|---|---|")
        for name, seconds in alone.items():
            print(f"| {name} | {seconds:.1f} | {drawings / max(seconds, 1e-9):.2f} |")
        slowest = max(alone, key=alone.get)
        over = results["overlapped"]
        print(f"overlapped stages: {', '.join(f'{k} done at {v:.1f} s' for k, v in over['marks'])}")
        print(f"ratio overlapped / slowest stage alone ({slowest}): {over['total'] / alone[slowest]:.2f} (target ≤ 1.5)")
        print(f"speed-up overlapped vs stages in turn: {results['stages in turn']['total'] / over['total']:.2f}×")
        if "one process" in results:
            print(f"speed-up overlapped vs one process: {results['one process']['total'] / over['total']:.2f}×")
        print("same collection as the stages in turn:", same_collection(scratch / "in-turn", scratch / "overlapped"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
