"""What the ingest's durability costs in CPU: a collection's stored PNGs written again as the ingest writes
them (a temporary name, then a rename; each document's folders fsynced), four ways, in the same run.

    python benchmarks/fsync_cost.py COLLECTION [--rounds 5] [--scratch /tmp/x]

- ``fsync each``: every file fsynced before its rename (``fsutil.atomic_write_bytes``, as ingest does);
- ``fsync after``: a document's files written without, then each fsynced once all are written;
- ``syncfs``: a document's files written without, then one ``syncfs(2)`` of the file system;
- ``none``: no file fsynced (not crash-safe; the floor).

Printed per way and round (the ways alternate their order): this process's CPU ms per file (user + system,
getrusage), the kernel threads' CPU ms per file up to an ``os.sync`` after the run (write-back and the
journal, which ``none`` leaves to them), and the wall ms per file. ``--scratch`` must be on the file system
the collection is on, for the same disk. The files are read into memory first.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import shutil
import time
from pathlib import Path

WAYS = ("fsync each", "fsync after", "syncfs", "none")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _kernel_threads_cpu() -> float:
    """CPU seconds of the kernel's threads (children of kthreadd, pid 2) so far."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == "2":
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(documents: dict, out: Path, way: str) -> None:
    for patent, files in documents.items():
        written, folders = [], set()
        for folder, name, data in files:
            target = out / folder / patent
            target.mkdir(parents=True, exist_ok=True)
            folders.add(target)
            tmp = target / f".{name}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(data)
                if way == "fsync each":
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, target / name)
            written.append(target / name)
        if way == "fsync after":
            for path in written:
                _fsync(path)
        elif way == "syncfs":
            fd = os.open(out, os.O_RDONLY)
            try:
                os.syncfs(fd) if hasattr(os, "syncfs") else __import__("ctypes").CDLL(None).syncfs(fd)
            finally:
                os.close(fd)
        if way != "none":
            for folder in folders:
                _fsync(folder, os.O_RDONLY | os.O_DIRECTORY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("collection", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scratch", type=Path, default=None, help="default: COLLECTION/../fsync-cost-scratch")
    args = parser.parse_args()
    documents: dict = collections.defaultdict(list)
    for folder in ("images", "thumbs"):
        for path in sorted((args.collection / folder).glob("*/*.png")):
            documents[path.parent.name].append((folder, path.name, path.read_bytes()))
    files = sum(len(v) for v in documents.values())
    out = args.scratch or args.collection.parent / "fsync-cost-scratch"
    for round_ in range(args.rounds):
        for way in WAYS if round_ % 2 == 0 else WAYS[::-1]:
            shutil.rmtree(out, ignore_errors=True)
            os.sync()
            kernel, cpu, wall = _kernel_threads_cpu(), _cpu(), time.perf_counter()
            write_all(documents, out, way)
            cpu, wall = _cpu() - cpu, time.perf_counter() - wall
            os.sync()
            kernel = _kernel_threads_cpu() - kernel
            print(f"round {round_ + 1} {way:11s}: this process {1000 * cpu / files:.3f} CPU ms a file, kernel threads "
                  f"{1000 * kernel / files:.3f}, wall {1000 * wall / files:.3f} ms (load {os.getloadavg()[0]:.1f})",
                  flush=True)
    shutil.rmtree(out, ignore_errors=True)
    print(f"{files} files of {len(documents)} documents")


if __name__ == "__main__":
    main()
