"""A served collection kept up to date: the week's documents added, then removed, a backup taken, while a client
searches it; how long each step takes and whether any search failed.

    PYTHONPATH=src python benchmarks/collection_upkeep.py --collection C --add PATH [PATH ...] [--work DIR]

C is copied into the work folder (never written); ``figsearch serve`` (1 worker) serves the copy, and a client
thread searches it by words and asks ``/api/info`` every 0.25 s throughout. Steps, each a ``figsearch`` command
timed by its wall clock: ``build --add PATHs`` (the week), then how long until ``/api/info`` counts every vector
indexed; ``remove`` of the patents the week added; ``backup`` and ``backup --link``. The baseline, in the same run:
``index --rebuild`` of the copy (what a removal's index step costs at most, plus a process start). Prints one
line per step and the polls' status codes: every one should be 200.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path


def figsearch(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "figsearch", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"figsearch {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return seconds, done.stdout


def stored_patents(coll: Path) -> set[str]:
    db = sqlite3.connect(coll / "figsearch.sqlite")
    try:
        return {r[0] for r in db.execute("SELECT publication_number FROM patents")}
    finally:
        db.close()


class Poller(threading.Thread):
    """Searches by words and reads /api/info every ``interval`` s; keeps the status codes and the last info."""

    def __init__(self, url: str, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.codes: Counter = Counter()
        self.info: dict = {}
        self.stopped = threading.Event()

    def _get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""
        except OSError:
            return 0, b""

    def run(self) -> None:
        while not self.stopped.is_set():
            code, _ = self._get("api/search?" + urllib.parse.urlencode({"text": "chair", "k": 3}))
            self.codes[code] += 1
            code, body = self._get("api/info")
            self.codes[code] += 1
            if code == 200:
                self.info = json.loads(body)
            time.sleep(self.interval)

    def all_indexed(self) -> bool:
        indexes = self.info.get("indexes") or {}
        return bool(indexes) and all(i["indexed"] == i["vectors"] for i in indexes.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", "-c", required=True)
    parser.add_argument("--add", nargs="+", required=True, help="the week's documents (files or folders)")
    parser.add_argument("--work", default=None, help="work folder (default: a new temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="upkeep-"))
    coll = work / "coll"
    if coll.exists():
        shutil.rmtree(coll)
    shutil.rmtree(work / "backup", ignore_errors=True)
    shutil.rmtree(work / "backup-link", ignore_errors=True)
    shutil.copytree(args.collection, coll, symlinks=True, ignore=shutil.ignore_patterns(".writer.lock", ".tmp"))
    print(f"load average {os.getloadavg()[0]:.2f}; collection copied to {coll}")
    server = subprocess.Popen([sys.executable, "-m", "figsearch", "serve", "-c", str(coll), "--port", "0",
                               "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        poller = Poller(url)
        poller.start()
        while not poller.info:
            time.sleep(0.1)
        before = stored_patents(coll)

        seconds, _ = figsearch("index", "-c", str(coll), "--rebuild", "-q")
        baseline = seconds
        print(f"baseline  index --rebuild: {seconds:.1f} s")

        seconds, out = figsearch("build", *args.add, "-c", str(coll), "-q")
        ended = time.perf_counter()
        while not poller.all_indexed() or poller.info.get("patents", 0) <= len(before):
            if time.perf_counter() - ended > 120:
                raise SystemExit("the server did not show the added documents within 120 s")
            time.sleep(0.05)
        seen = time.perf_counter() - ended
        added = sorted(stored_patents(coll) - before)
        actions = [line.split(",")[0] for line in out.splitlines() if " index: " in line]
        print(f"add       build: {len(added)} documents in {seconds:.1f} s ({'; '.join(actions)}); "
              f"the server counted them all indexed {seen:.1f} s after the command ended (0.0: before it exited; "
              f"no restart)")

        listing = work / "added.txt"
        listing.write_text("\n".join(added) + "\n")
        seconds, out = figsearch("remove", "-c", str(coll), "--list", str(listing), "--json")
        removed = json.loads(out)
        print(f"remove    {len(removed['removed'])} documents, {removed['figures']} figures, {removed['files']} files "
              f"in {seconds:.1f} s = {seconds / baseline:.2f}x the baseline")

        for name, extra in (("backup", ()), ("backup-link", ("--link",))):
            seconds, out = figsearch("backup", "-c", str(coll), str(work / name), "--json", *extra)
            copied = json.loads(out)
            print(f"{name:<11} {copied['files']} files ({copied['linked']} linked, "
                  f"{copied['bytes'] / 1e6:.1f} MB copied) in {seconds:.1f} s = {seconds / baseline:.2f}x the baseline")
        time.sleep(1.0)
        poller.stopped.set()
        poller.join()
        print(f"polls     {sum(poller.codes.values())} answers: {dict(sorted(poller.codes.items()))}; "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
