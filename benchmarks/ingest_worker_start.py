"""What the overlapped build's ingest worker costs to start: spawned (before stop 30) against forked by the
readers' forkserver, whose server imports ``overlapped.INGEST_PRELOAD`` beside the readers' modules.

    python benchmarks/ingest_worker_start.py ../shared/data/us-design-grants [--documents 3] [--rounds 4]

Each run is a fresh Python process that does what ``overlapped.stream`` does at its start: it makes the readers'
context (``signs.reader_context``, with ``INGEST_PRELOAD`` or without), starts one reader from it (which
starts the forkserver and its imports), and ingests the first ``--documents`` documents into a fresh
collection with ``ingest.workers.run_units(..., processes=1)``, its one worker forked by that server or
spawned. Before the worker is shut down it reads from /proc the CPU seconds (user + system) of the worker and
of the forkserver (which the two ways share out differently: the server's imports of the ingest modules are
the worker's own when it is spawned); the reader, the same either way, is left out. Printed per run, the
configurations alternating so that a machine whose load changes favours neither, then the medians. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

_DRIVER = r"""
import functools, json, os, sys
from pathlib import Path
from figsearch.ingest import workers
from figsearch.ingest.runner import ingest_paths
from figsearch.pipeline.overlapped import INGEST_PRELOAD
from figsearch.pipeline.signs import _started, reader_context
from figsearch.store import Collection

paths, root, forked = json.loads(sys.argv[1])
context = reader_context(also=INGEST_PRELOAD if forked else ())
from concurrent.futures import ProcessPoolExecutor
reader = ProcessPoolExecutor(1, mp_context=context)
reader.submit(_started).result()  # the forkserver and one reader, as the overlapped build starts them
tick = os.sysconf("SC_CLK_TCK")

def cpu_by_kind():
    kinds = {"ingest worker": 0.0, "forkserver": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        seconds = (int(stat[11]) + int(stat[12])) / tick
        if name == workers.WORKER_NAME and int(stat[1]) in (os.getpid(), forkserver_pid()):
            kinds["ingest worker"] += seconds
        elif int(pid) == forkserver_pid():
            kinds["forkserver"] += seconds
    return kinds

def forkserver_pid():
    from multiprocessing import forkserver
    return forkserver._forkserver._forkserver_pid

measured = {}
def run_units(units, root, jobs):
    results = workers.run_units(units, root, jobs, processes=1, context=context if forked else None)
    for i, result in enumerate(results):
        if i == len(units) - 1:
            measured.update(cpu_by_kind())  # the worker is still there until the generator ends
        yield result

with Collection.open(Path(root), create=True) as collection:
    summary = ingest_paths(collection, [Path(p) for p in paths], jobs=1, run_units=run_units)
reader.shutdown()
print(json.dumps({**measured, "sheets": summary.figures}))
"""


def run(tree: Path, paths: list[str], forked: bool, scratch: Path) -> dict:
    root = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(os.environ, PYTHONPATH=f"{tree / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               HF_HUB_OFFLINE="1", OMP_THREAD_LIMIT="1")
    done = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps([paths, str(root / "c"), forked])],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a folder of patent documents (one subfolder each)")
    parser.add_argument("--documents", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    paths = [str(p) for p in sorted(args.data.iterdir()) if p.is_dir()][:args.documents]
    ways = {False: "spawned (before)", True: "forked by the forkserver"}
    totals: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="figsearch-ingest-start-") as scratch:
        for round_ in range(args.rounds):
            for forked in (False, True) if round_ % 2 == 0 else (True, False):
                load = os.getloadavg()[0]
                r = run(HERE, paths, forked, Path(scratch))
                total = r["ingest worker"] + r["forkserver"]
                totals[forked].append(total)
                print(f"round {round_ + 1} {ways[forked]:25s} ingest worker {r['ingest worker']:.2f} + forkserver "
                      f"{r['forkserver']:.2f} = {total:.2f} CPU s ({r['sheets']} sheets; load {load:.1f} -> "
                      f"{os.getloadavg()[0]:.1f})", flush=True)
    before, after = (statistics.median(totals[k]) for k in (False, True))
    print(f"median ingest worker + forkserver: forked {after:.2f} CPU s against spawned {before:.2f} "
          f"({after - before:+.2f} CPU s a build)")


if __name__ == "__main__":
    main()
