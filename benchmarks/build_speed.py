"""Build speed: the overlapped build against the stages in turn, in the same run.

    python benchmarks/build_speed.py ../shared/data/us-design-grants --jobs 2 [--limit N] [--rounds R]
        [--serial] [--visual-model NAME] [--baseline OTHER_TREE] [--env NAME=VALUE[,NAME=VALUE...]]...

Each configuration builds a fresh collection in its own Python process (so no configuration
starts with another's imports warm):

- ``stages in turn``: ``build(..., overlap=False)`` (``figsearch build --no-overlap``) with ``--jobs``
  workers: ingest, then reading the signs, then embedding and indexing. Each stage runs alone
  there, so its time is the "stage alone" time;
- ``overlapped``: ``build(..., overlap=True)`` (figsearch.pipeline.overlapped, the default of
  ``figsearch build``): ingest, reading and embedding at once;
- ``one process`` (``--serial``): ``-j 1``, the stages in turn; the overlapped build's collection is
  then also compared with it (the target: the same collection as a one-process build).

``--rounds R`` runs the configurations R times, alternating their order (overlapped first in
odd rounds, the stages in turn first in even ones), so that a machine whose load changes favours
neither. For each run it prints the wall time, drawings/s end to end (drawings = the figures
indexed, sheets cut into their figures), the **CPU seconds of the whole process tree** (the build
and every worker, sampled from /proc every 0.2 s; Linux only) and the build's mean share of the
CPUs (CPU seconds / wall seconds), with the load average (``os.getloadavg``) before and after;
by kind of process (the build process, the ingest workers, the OCR readers), its CPU seconds per
drawing and when it last used the CPU (seconds from the build's start): in the overlapped build,
what the build process does alone after the readers are done; by kind of process, its migrations
between CPUs and its voluntary and involuntary context switches per drawing (all threads); and the
CPU seconds the build left unasked for (at each sample, the CPUs beyond its runnable threads) before
its readers first ran, while they ran and after they were done: where an idle machine's cores idle.
``--env NAME=VALUE[,NAME=VALUE...]`` adds this tree's overlapped build with those variables set (e.g.
``FIGSEARCH_MINILM_ONNX=0``), alternating with the others like ``--baseline``; each ``--env`` given is one
more such build (stop 29: several scheduling settings side by side in one run).
On a machine shared with other work the CPU seconds are the steadier number: where the kernel
shares the CPUs between sessions (``/proc/sys/kernel/sched_autogroup_enabled``), a build gets
about the same share however many processes it runs, and its wall time follows its CPU time.
Then each stage's rate alone, the ratio overlapped / slowest stage alone and the speed-up over
the stages in turn (per round), and whether the overlapped build gave the same collection as the
stages in turn (every table and stored file; vectors within 1e-6). Collections are built under a
temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_DRIVER = r"""
import json, os, sys, time
from figsearch.pipeline.building import build
marks = []
start = time.time()
def on_stage(name, report):
    marks.append((name, time.time()))
paths, root, jobs, overlap, visual_model = json.loads(sys.argv[1])
report = build(paths, root, jobs=jobs, overlap=overlap, on_stage=on_stage, visual_model=visual_model)
visual = [e for e in report.index.embedded if e.modality == "visual"][0]
print(json.dumps({"marks": marks, "start": start, "end": time.time(), "drawings": visual.embedded + visual.unchanged,
                  "sheets": report.ingest.figures, "documents": report.ingest.documents}))
"""


class TreeCPU(threading.Thread):
    """CPU seconds (user + system) of a process and all its descendants, sampled from /proc.

    A process is counted up to its last sample, so each one that ends between samples loses at most
    ``interval`` of CPU time. ``samples``: (time.time(), total CPU seconds so far) for each sample."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.cpu: dict[int, float] = {}
        self.kind: dict[int, str] = {}
        #: (pid, thread id) -> [migrations between CPUs, voluntary switches, involuntary switches] (the
        #: scheduler's counts in /proc/PID/task/TID/sched, their largest sample)
        self.switches: dict[tuple[int, int], list[int]] = {}
        self.samples: list[tuple[float, float]] = []
        #: (time.time(), how many of the tree's threads were running or waiting for a CPU: state R) for each sample
        self.runnable: list[tuple[float, int]] = []
        self._running = 0
        #: kind of process -> time.time() of the first sample in which it had used CPU
        self.first_busy: dict[str, float] = {}
        #: kind of process (``_kind``) -> time.time() of the last sample in which its CPU seconds grew
        self.last_busy: dict[str, float] = {}
        self._last_cpu: dict[str, float] = {}
        self.halt = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        parents, used = {}, {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(name)] = int(fields[1])
            used[int(name)] = (int(fields[11]) + int(fields[12])) / self.tick
        children: dict[int, list[int]] = {}
        for pid, parent in parents.items():
            children.setdefault(parent, []).append(pid)
        tree, frontier = set(), [self.root]
        while frontier:
            pid = frontier.pop()
            if pid in tree:
                continue
            tree.add(pid)
            frontier += children.get(pid, [])
        self._running = 0
        for pid in tree & used.keys():
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), used[pid])
            if pid not in self.kind:
                self.kind[pid] = self._kind(pid)
            elif self.kind[pid] == "OCR readers" and self._named_ingest_worker(pid):  # named after its fork
                self.kind[pid] = "ingest workers"
            self._count_switches(pid)
        now = time.time()
        self.samples.append((now, sum(self.cpu.values())))
        self.runnable.append((now, self._running))
        for kind, cpu in self.by_kind().items():  # when each kind of process first and last used the CPU
            if cpu > self._last_cpu.get(kind, 0.0):
                self.last_busy[kind], self._last_cpu[kind] = now, cpu
                self.first_busy.setdefault(kind, now)

    _SCHED = {"se.nr_migrations": 0, "nr_voluntary_switches": 1, "nr_involuntary_switches": 2}
    #: the scheduler's counts are read at every this many samples (and the last): a process's last second
    #: of switches may be missed, not its CPU seconds
    SCHED_EVERY = 5

    def _count_switches(self, pid: int) -> None:
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    self._running += f.read().rsplit(")", 1)[1].split()[0] == "R"
                if len(self.samples) % self.SCHED_EVERY and not self.halt.is_set():
                    continue  # the scheduler's counts only now and then: each read costs the cores the build runs on
                with open(f"/proc/{pid}/task/{tid}/sched") as f:
                    lines = f.read().splitlines()
            except (OSError, IndexError):
                continue
            counts = self.switches.setdefault((pid, int(tid)), [0, 0, 0])
            for line in lines:
                name, _, value = line.partition(":")
                at = self._SCHED.get(name.strip())
                if at is not None:
                    counts[at] = max(counts[at], int(float(value)))

    def switches_by_kind(self) -> dict[str, list[int]]:
        """kind -> [migrations, voluntary switches, involuntary switches] of all its threads."""
        out: dict[str, list[int]] = {}
        for (pid, _), counts in self.switches.items():
            total = out.setdefault(self.kind.get(pid, "other"), [0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n
        return out

    def _kind(self, pid: int) -> str:
        """Which of the build's processes ``pid`` is: the build itself, an ingest worker (spawned, or forked
        by the forkserver and named ``fs-ingest`` since stop 30), an OCR reader (forked by the
        forkserver), or a helper (the forkserver, resource tracker)."""
        if pid == self.root:
            return "build process"
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return "other"
        if self._named_ingest_worker(pid):
            return "ingest workers"
        if "multiprocessing.spawn" in command:
            return "ingest workers"
        if "multiprocessing.forkserver" in command:  # the server itself is at most a few tenths
            return "OCR readers"
        return "other"

    @staticmethod
    def _named_ingest_worker(pid: int) -> bool:
        """Whether ``pid`` is named as the ingest workers name themselves (``ingest.workers.WORKER_NAME``)."""
        try:
            with open(f"/proc/{pid}/comm", "rb") as f:
                return f.read().strip() == b"fs-ingest"
        except OSError:
            return False

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, cpu in self.cpu.items():
            kind = self.kind.get(pid, "other")
            out[kind] = out.get(kind, 0.0) + cpu
        return out

    def short(self, cpus: int, start: float, end: float) -> float:
        """CPU seconds the tree left unasked for between ``start`` and ``end``: at each sample, the CPUs
        beyond its runnable threads (state R: running, or ready and waiting for a CPU), times the time
        to the next sample. On an idle machine that is how long cores idled; on a loaded one it still
        says where the build itself had too little to run (its waits for a core count as runnable)."""
        total = 0.0
        for (when, running), (after, _) in zip(self.runnable, self.runnable[1:]):
            low, high = max(when, start), min(after, end)
            if high > low:
                total += max(0, cpus - running) * (high - low)
        return total

    def at(self, moment: float) -> float:
        """CPU seconds used by the tree up to ``moment`` (the last sample before it)."""
        before = [cpu for when, cpu in self.samples if when <= moment]
        return before[-1] if before else 0.0


def run(paths: list[str], root: Path, jobs: int, overlap: bool, visual_model: str | None, keep: bool = False,
        src: Path | None = None, extra_env: dict | None = None) -> dict:
    """One build in a fresh process; ``src``: the source tree put first on its PYTHONPATH (``--baseline``);
    ``extra_env``: variables set for it (``--env``)."""
    load_before = os.getloadavg()[0]
    env = None
    if src is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if extra_env:
        env = {**(env or os.environ), **extra_env}
    process = subprocess.Popen([sys.executable, "-c", _DRIVER, json.dumps([paths, str(root), jobs, overlap, visual_model])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    cpu = TreeCPU(process.pid)
    cpu.start()
    out, err = process.communicate()
    cpu.halt.set()
    cpu.join()
    if process.returncode:
        sys.exit(f"build failed:\n{err[-4000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["total"] = result["end"] - result["start"]
    result["cpu"] = cpu.samples[-1][1]
    result["processes"] = cpu.by_kind()
    result["switches"] = cpu.switches_by_kind()
    result["busy_until"] = {kind: at - result["start"] for kind, at in cpu.last_busy.items()}
    # where the build left CPUs unasked for: before its readers first used the CPU, while they did, after
    cpus = os.cpu_count() or 1
    readers = (cpu.first_busy.get("OCR readers", result["start"]), cpu.last_busy.get("OCR readers", result["start"]))
    result["short"] = (cpu.short(cpus, result["start"], readers[0]), cpu.short(cpus, readers[0], readers[1]),
                       cpu.short(cpus, readers[1], result["end"]))
    result["load"] = (load_before, os.getloadavg()[0])
    stages, previous = {}, result["start"]
    for name, at in result["marks"]:
        stages[name] = (at - previous, cpu.at(at) - cpu.at(previous))
        previous = at
    result["stages"] = stages
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def same_collection(reference: Path, other: Path, pixels: bool = False) -> str:
    """Whether two collections hold the same tables, files and vectors (within float noise), in words.

    ``pixels``: stored images compare by their decoded pixels, and the figures' ``image_sha256`` (the
    digest of the file's bytes) is left out: for a baseline tree that encodes PNGs differently (the
    trees before stop 22 let Pillow choose row filters; see docs/performance.md, "Stop 22")."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import sqlite3

    import numpy as np
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
    if pixels:
        for root, snap in ((reference, ref), (other, got)):
            _by_pixels(root, snap)
    difference = compare(ref, got)
    a, b = vectors(reference), vectors(other)
    if a.keys() != b.keys():
        return f"different vectors stored ({len(a)} vs {len(b)})"
    worst = max((float(np.abs(a[k] - b[k]).max()) for k in a), default=0.0)
    return f"tables and files: {difference}; {len(a)} vectors, largest difference {worst:.1e}"


def _by_pixels(root: Path, snap) -> None:
    """``snap`` with each stored PNG's digest that of its decoded pixels, and without the figures'
    ``image_sha256`` column."""
    import hashlib
    import sqlite3

    from PIL import Image

    for relative in snap.files:
        with Image.open(root / relative) as image:
            image.load()
            # a 1-bit file (a bilevel drawing since stop 26) is its "L" pixels, as imaging.load_stored hands it on
            image = image.convert("L") if image.mode == "1" else image
            snap.files[relative] = hashlib.sha256(f"{image.mode} {image.size}".encode() + image.tobytes()).hexdigest()
    db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
    try:
        from collection_check import _TIMES  # the columns that snapshot() leaves out

        columns = [row[1] for row in db.execute("PRAGMA table_info(figures)") if row[1] not in _TIMES]
    finally:
        db.close()
    if "image_sha256" in columns and "figures" in snap.tables:
        at = columns.index("image_sha256")
        snap.tables["figures"] = {key: row[:at] + row[at + 1:] for key, row in snap.tables["figures"].items()}


def _largest(comparison: str) -> float:
    """The largest vector difference in a same_collection() sentence (inf when there is none)."""
    try:
        return float(comparison.rsplit("largest difference ", 1)[1])
    except (IndexError, ValueError):
        return float("inf")


def _autogroup() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"


def _warm_caches() -> None:
    """Make what a build derives once per machine before any timed build: the text model's ONNX
    graph (figsearch.embed.encoders.text), else the first build alone would pay its export."""
    try:
        from figsearch.embed.catalog import create_text

        encoder = create_text("minilm")
    except Exception as exc:  # noqa: BLE001 - a tree without the text model: its builds say why
        print(f"text model not loaded before the runs: {exc}", file=sys.stderr)
        return
    graph = getattr(encoder, "graph", None)
    print(f"text model: {type(encoder).__name__}" + (f" (ONNX graph cached at {graph})" if graph else ""), file=sys.stderr)


def env_builds(items: list[str]) -> dict[str, dict[str, str]]:
    """The builds that ``--env`` adds, one per item: its name -> the variables it sets ("A=1,B=x")."""
    builds = {}
    for item in items:
        pairs = [pair.split("=", 1) for pair in item.split(",")]
        if any(len(pair) != 2 or not pair[0] for pair in pairs):
            sys.exit(f"--env {item!r}: give NAME=VALUE, several separated by commas")
        builds[f"overlapped ({item.replace(',', ' ')})"] = dict(pairs)
    return builds


#: the configuration ``--baseline`` adds: the other tree's overlapped build
BASELINE = "overlapped (baseline tree)"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--serial", action="store_true", help="also the one-process build (-j 1)")
    parser.add_argument("--limit", type=int, default=0,
                        help="only the first N entries of each folder given (sorted): a quicker run")
    parser.add_argument("--rounds", type=int, default=1, help="run the configurations this many times, alternating")
    parser.add_argument("--visual-model", default=None, help="visual encoder of every build (default: the default)")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another source tree (e.g. /work/main): its overlapped build also runs in each round, "
                             "alternating with this tree's, and the two are compared (CPU s per drawing, drawings/s)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE...]",
                        help="also this tree's overlapped build with these environment variables set (e.g. "
                             "FIGSEARCH_MINILM_ONNX=0), in each round beside the others, compared like --baseline; "
                             "each --env is one more build (its variables separated by commas)")
    args = parser.parse_args()
    env_configs = env_builds(args.env)
    scratch = Path(tempfile.mkdtemp(prefix="figsearch-build-bench-"))
    _warm_caches()
    try:
        paths = []
        for path in args.paths:
            if args.limit and path.is_dir():
                entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))[: args.limit]
                paths += [str(p.resolve()) for p in entries]
            else:
                paths.append(str(path.resolve()))
        names = ["overlapped", "stages in turn"] + (["one process"] if args.serial else [])
        names[:0] = list(env_configs)
        if args.baseline:
            names.insert(0, BASELINE)  # beside this tree's overlapped build: even rounds first, odd rounds last
        baseline_src = args.baseline.resolve() / "src" if args.baseline else None
        runs: list[tuple[int, str, dict]] = []
        kept = {}
        for round_ in range(args.rounds):
            if args.baseline or env_configs:
                order = names if round_ % 2 == 0 else names[::-1]
            else:
                order = names if round_ % 2 == 0 else [names[1], names[0], *names[2:]]
            for name in order:
                root = scratch / f"{name.replace(' ', '-')}-{round_}"
                jobs = 1 if name == "one process" else args.jobs
                keep = round_ == 0  # the first round's collections are compared at the end
                result = run(paths, root, jobs, name in ("overlapped", BASELINE, *env_configs), args.visual_model,
                             keep=keep,
                             src=baseline_src if name == BASELINE else Path(__file__).resolve().parent.parent / "src",
                             extra_env=env_configs.get(name))
                if keep:
                    kept[name] = root
                runs.append((round_, name, result))
                print(f"round {round_ + 1} {name}: {result['total']:.1f} s wall, {result['cpu']:.1f} CPU s, "
                      f"load {result['load'][0]:.1f} → {result['load'][1]:.1f}", file=sys.stderr, flush=True)
        first = runs[0][2]
        print(f"{first['documents']} documents, {first['sheets']} sheets ingested, {first['drawings']} drawings "
              f"indexed; --jobs {args.jobs} on {os.cpu_count()} CPUs; visual encoder {args.visual_model or 'default'}; "
              f"sched_autogroup_enabled={_autogroup()}")
        print("| round | build | wall s | drawings/s | CPU s (all processes) | CPU s per drawing | CPU share (cores) | "
              "load avg before → after |")
        print("|---|---|---|---|---|---|---|---|")
        for round_, name, r in runs:
            jobs = 1 if name == "one process" else args.jobs
            print(f"| {round_ + 1} | {name} (-j {jobs}) | {r['total']:.1f} | {r['drawings'] / r['total']:.2f} | "
                  f"{r['cpu']:.1f} | {r['cpu'] / max(r['drawings'], 1):.3f} | {r['cpu'] / r['total']:.2f} | "
                  f"{r['load'][0]:.1f} → {r['load'][1]:.1f} |")
        print("| round | build | CPU s per drawing, by process | busy until (s from the build's start; the sampling's 0.2 s) |")
        print("|---|---|---|---|")
        for round_, name, r in runs:
            parts = ", ".join(f"{kind} {cpu / max(r['drawings'], 1):.3f}" for kind, cpu in sorted(r["processes"].items()))
            until = ", ".join(f"{kind} {at:.1f}" for kind, at in sorted(r.get("busy_until", {}).items(), key=lambda x: x[1])
                              if kind != "other")
            print(f"| {round_ + 1} | {name} | {parts} | {until} (end {r['total']:.1f}) |")
        print("| round | build | per drawing, by process: migrations between CPUs / voluntary / involuntary context switches "
              "(all threads; /proc/PID/task/TID/sched) |")
        print("|---|---|---|")
        for round_, name, r in runs:
            drawings = max(r["drawings"], 1)
            parts = ", ".join(kind + " " + " / ".join(f"{n / drawings:.1f}" for n in counts)
                              for kind, counts in sorted(r.get("switches", {}).items()) if kind != "other")
            print(f"| {round_ + 1} | {name} | {parts} |")
        print(f"CPU s the build left unasked for on {os.cpu_count()} CPUs (fewer threads runnable than CPUs, sampled every "
              "0.2 s): before the OCR readers first ran / while they ran / after they were done")
        for round_, name, r in runs:
            print(f"  round {round_ + 1} {name}: " + " / ".join(f"{v:.1f}" for v in r["short"]))
        # 10 drawings/s on these cores leaves this many CPU seconds per drawing for everything
        print(f"CPU s per drawing that 10 drawings/s allows on {os.cpu_count()} cores: {os.cpu_count() / 10:.2f}")
        print("| round | stage alone (stages in turn) | wall s | drawings/s | CPU s |")
        print("|---|---|---|---|---|")
        for round_, name, r in runs:
            if name == "stages in turn":
                for stage, (seconds, cpu) in r["stages"].items():
                    print(f"| {round_ + 1} | {stage} | {seconds:.1f} | {r['drawings'] / max(seconds, 1e-9):.2f} | {cpu:.1f} |")
        ratios, speedups, cpu_ratios, floors = [], [], [], []
        for round_ in range(args.rounds):
            by_name = {name: r for k, name, r in runs if k == round_}
            over, turn = by_name["overlapped"], by_name["stages in turn"]
            alone = {stage: seconds for stage, (seconds, _) in turn["stages"].items()}
            slowest = max(alone, key=alone.get)
            ratios.append(over["total"] / alone[slowest])
            # on idle cores that both fill, the wall ratio is at least this (CPU s / cores each): the
            # figure to compare under load, where wall times measure the scheduler
            floors.append(over["cpu"] / turn["stages"][slowest][1])
            speedups.append(turn["total"] / over["total"])
            cpu_ratios.append(over["cpu"] / turn["cpu"])
            marks = ", ".join(f"{k} done at {v - over['start']:.1f} s" for k, v in over["marks"])
            print(f"round {round_ + 1}: overlapped / slowest stage alone ({slowest}) {ratios[-1]:.2f} (target ≤ 1.5); "
                  f"its CPU s / that stage's CPU s {floors[-1]:.2f} (the ratio's floor on idle cores); "
                  f"speed-up over the stages in turn {speedups[-1]:.2f}×; CPU s overlapped / in turn {cpu_ratios[-1]:.2f}"
                  f"{'; speed-up over one process %.2f×' % (by_name['one process']['total'] / over['total']) if args.serial else ''}"
                  f" (overlapped: {marks})")
        if args.rounds > 1:
            print(f"median of {args.rounds} rounds: overlapped / slowest stage alone {statistics.median(ratios):.2f}; "
                  f"speed-up {statistics.median(speedups):.2f}×; CPU s overlapped / in turn {statistics.median(cpu_ratios):.2f}")
        same = same_collection(kept["stages in turn"], kept["overlapped"])
        print("same collection as the stages in turn:", same)
        identical = same.startswith("tables and files: identical") and _largest(same) <= 1e-6
        if args.serial:
            serial = same_collection(kept["one process"], kept["overlapped"])
            print("same collection as one process:", serial)
            identical = identical and serial.startswith("tables and files: identical") and _largest(serial) <= 1e-6
        rates = [r["drawings"] / r["total"] for _, name, r in runs if name == "overlapped"]
        cpu_per = [r["cpu"] / max(r["drawings"], 1) for _, name, r in runs if name == "overlapped"]
        print(f"targets (overlapped, median of {args.rounds} round(s); wall-time targets hold only on an idle machine):")
        print(f"  >= 10 drawings/s end to end: {statistics.median(rates):.2f} -> {_verdict(statistics.median(rates) >= 10)}"
              f"  (CPU s per drawing {statistics.median(cpu_per):.3f}; 10/s on {os.cpu_count()} cores allows "
              f"{os.cpu_count() / 10:.2f} -> {_verdict(statistics.median(cpu_per) <= os.cpu_count() / 10)})")
        print(f"  <= 1.5x the slowest stage alone: {statistics.median(ratios):.2f} -> {_verdict(statistics.median(ratios) <= 1.5)}"
              f"  (by CPU s, its floor on idle cores: {statistics.median(floors):.2f} -> {_verdict(statistics.median(floors) <= 1.5)})")
        print(f"  same collection{' as one process and' if args.serial else ''} as the stages in turn: {_verdict(identical)}")
        for with_env in env_configs:
            other = [r for _, name, r in runs if name == with_env]
            print(f"this tree {with_env} against without (overlapped builds, median of {args.rounds} "
                  f"round(s), alternating): CPU s per drawing "
                  f"{statistics.median(r['cpu'] / max(r['drawings'], 1) for r in other):.3f} vs {statistics.median(cpu_per):.3f}; "
                  f"drawings/s {statistics.median(r['drawings'] / r['total'] for r in other):.2f} vs {statistics.median(rates):.2f}"
                  f" (wall time: meaningful on an idle machine only)")
            for round_ in range(args.rounds):
                by_name = {name: r for k, name, r in runs if k == round_}
                turn = by_name["stages in turn"]
                slowest = max(turn["stages"], key=lambda stage: turn["stages"][stage][0])
                print(f"  round {round_ + 1}: {with_env}, overlapped / slowest stage alone ({slowest}) "
                      f"{by_name[with_env]['total'] / turn['stages'][slowest][0]:.2f}, its floor by CPU s "
                      f"{by_name[with_env]['cpu'] / turn['stages'][slowest][1]:.2f}")
            print("  same collection as this tree's stages in turn:", same_collection(kept["stages in turn"], kept[with_env]))
        if args.baseline:
            base = [r for _, name, r in runs if name == BASELINE]
            base_rate = statistics.median(r["drawings"] / r["total"] for r in base)
            base_cpu = statistics.median(r["cpu"] / max(r["drawings"], 1) for r in base)
            print(f"this tree against {args.baseline} (overlapped builds, median of {args.rounds} round(s), alternating):"
                  f" CPU s per drawing {statistics.median(cpu_per):.3f} vs {base_cpu:.3f}"
                  f" ({statistics.median(cpu_per) / base_cpu:.3f}x); drawings/s {statistics.median(rates):.2f} vs {base_rate:.2f}"
                  f" ({statistics.median(rates) / base_rate:.2f}x; wall time: meaningful on an idle machine only)")
            print("  same collection as this tree's stages in turn:", same_collection(kept["stages in turn"], kept[BASELINE]))
            print("  ... comparing the stored images' pixels instead of their bytes, and without the figures' digests:",
                  same_collection(kept["stages in turn"], kept[BASELINE], pixels=True))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
