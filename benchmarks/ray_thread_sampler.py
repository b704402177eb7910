"""The CPU seconds of each thread of every Ray process (``ray::...``) and of every build the Ray benchmark
runs (its ``--one MODE`` processes), sampled from /proc every 0.25 s while it runs; on SIGTERM or Ctrl-C
it prints one JSON line per process (its threads' CPU summed by thread name, and its ten busiest threads:
CPU s, name, thread id less the process id). Stop 24 used it to see whether a 2-worker build's workers
have threads that burn CPU besides the one that does the work (they did not: docs/cluster.md).

    python benchmarks/ray_thread_sampler.py > threads.jsonl &  SAMPLER=$!
    PYTHONPATH=src python benchmarks/ray_build_benchmark.py --documents 20 --modes ray1,ray2
    kill $SAMPLER

Linux only; a thread's last 0.25 s before its process exits are not counted.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import sys
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
#: pid -> {"name", "threads": {tid: (thread name, CPU s)}, "first", "last"} of every process seen
SEEN: dict[int, dict] = {}


def _name(pid_dir: Path) -> str | None:
    """``ray::...`` for Ray's processes, ``driver:MODE`` for a benchmark build, None for the others."""
    try:
        words = [w.decode(errors="replace") for w in (pid_dir / "cmdline").read_bytes().split(b"\0") if w]
    except OSError:
        return None
    if words and words[0].startswith("ray::"):
        return words[0].split()[0]  # ray::IDLE, ray::_Worker, ray::DashboardAgent...
    if "--one" in words[:-1]:
        return "driver:" + words[words.index("--one") + 1]
    return None


def scan() -> None:
    for pid_dir in Path("/proc").iterdir():
        name = _name(pid_dir) if pid_dir.name.isdigit() else None
        if name is None:
            continue
        record = SEEN.setdefault(int(pid_dir.name), {"name": name, "threads": {}, "first": time.time()})
        if name != "ray::IDLE":  # a worker process is ray::IDLE until its actor starts
            record["name"] = name
        record["last"] = time.time()
        for task in pid_dir.glob("task/*"):
            try:
                stat, comm = (task / "stat").read_text(), (task / "comm").read_text().strip()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            record["threads"][int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) / TICK)


def dump(*_) -> None:
    for pid, record in sorted(SEEN.items(), key=lambda item: item[1]["first"]):
        by_name: collections.Counter = collections.Counter()
        for comm, cpu in record["threads"].values():
            by_name[comm] += cpu
        total = sum(by_name.values())
        if total < 0.3:
            continue
        busiest = sorted(((round(cpu, 2), comm, tid - pid) for tid, (comm, cpu) in record["threads"].items()
                          if cpu >= 0.05), reverse=True)[:10]
        print(json.dumps({"pid": pid, "name": record["name"], "seconds seen": round(record["last"] - record["first"], 1),
                          "cpu": round(total, 2), "threads": len(record["threads"]),
                          "cpu by thread name": {k: round(v, 2) for k, v in by_name.most_common(8) if v >= 0.05},
                          "busiest threads": busiest}), flush=True)
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, dump)
    signal.signal(signal.SIGINT, dump)
    while True:
        scan()
        time.sleep(0.25)


if __name__ == "__main__":
    main()
