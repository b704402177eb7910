"""The build on Ray against the local build, on a subset of the shared data, in one run.

    PYTHONPATH=src python benchmarks/ray_build_benchmark.py [--documents 20[,6,all]] [--rounds 1] [--skip-ocr]
        [--modes local1,local2,ray1,ray2,running1,running2] [--baseline DIR]

The lead's re-run on the idle machine (about 14 minutes: 4 rounds of the 4 builds the targets name):

    PYTHONPATH=src python benchmarks/ray_build_benchmark.py --documents 20 --modes local1,local2,ray1,ray2 --rounds 4

Four builds of the same input, each in a fresh process and a fresh collection:

- local, 1 process (``--jobs 1``: decoding and OCR in the build's process, torch on one thread)
- local, 2 processes (``--jobs 2``: decoding and OCR in 2 worker processes, torch on 2 threads), the stages one
  after the other (``pipeline.building.build``'s default and ``figsearch build --no-overlap``)
- ``overlap2`` (not in the default modes): local, 2 processes, the stages overlapped, as ``figsearch build --jobs 2``
  runs by default (``overlap=True``)
- Ray with 1 worker (a local Ray instance, ``ray.init(num_cpus=1)``)
- Ray with 2 workers (``ray.init(num_cpus=2)``)
- ``rayown1`` / ``rayown2`` (not in the default modes): as ``ray1`` / ``ray2``, with the driver
  ingesting documents itself while Ray starts (``distributed.DRIVER_INGEST``, off by default), for a
  same-run comparison with ``ray1`` / ``ray2``
- ``raycore1`` (not in the default modes, stop 30): as ``ray1``, with the worker's encoders on one thread (as
  before stop 28, when the 1-worker build left the second core to the driver): a 1-worker build kept to about
  one core, the baseline against which 2 workers on 2 cores can approach 2x
- ``running1`` / ``running2`` (not in the default modes): Ray as on a cluster, an instance started
  before the build (``ray start --head --block --num-cpus N`` with ``RAY_worker_niceness=0`` and
  ``RAY_preload_python_modules=figsearch.pipeline.ray_worker``, as docs/cluster.md says to start a
  node) and joined by the build (``--ray ADDRESS``); the seconds of that ``ray start`` are printed (``ray_start_seconds``) but not counted in the build, whose clock
  starts when it joins; ``ray_processes_cpu`` is then the CPU seconds of the instance's processes
  during the build (read from ``/proc`` before and after it); the instance is stopped after the build

Input: the first ``--documents`` folders of ``us-design-grants`` (their XML and TIFF sheets) and
the EP document ``EP1667425A1`` (drawings with reference numerals); ``all``: the whole shared data
with drawings of those kinds (every design grant, both EP documents, both US applications; the other folders with
drawings are left out); several sizes
separated by commas are measured one after the other. The wall time of each build (ingest, signs and links,
embedding with the default encoders, indexes) is printed, with the ratios the targets are about:
Ray 2 workers vs Ray 1 worker (target >= 1.7x), and Ray vs local at the same number of processes
(target >= 0.9x), each with "met" or "MISSED", with and without Ray's start (the time the driver
waited for the Ray instance it starts in the background, or joined). With Ray, the driver process still parses, links and writes, so "1 worker" is
the driver plus one worker process. Each build's JSON line also has the driver's CPU seconds, the Ray workers' (their
own count; not measured for the local build's worker processes), the driver's waits for the workers (``driver_waits``) and each worker's seconds loading its models and
in each kind of call (``worker_seconds``, with each worker's niceness and CPU seconds), how many drawings the workers read and encoded while
ingesting and in the later stages, how many texts they encoded before the embedding stage and in it
(``texts_encoded``), the driver's CPU seconds by thread (``driver_threads_cpu``), and a ``timeline``: per stage each worker's busy and idle seconds and the driver's
working and waiting ones, when each worker ended its last ingest, and a one-line picture of each process over the
build (``timeline``'s docstring says what its letters mean): where the time goes; the report repeats them under the table.
Each Ray build's ``start`` is the timeline of its first seconds (``start_timeline``): when the driver
had imported Ray, for an instance the build starts when its GCS was up, its raylet started and registered
(once its two agents were up; from then on ``ray.init`` waits for the worker processes it prestarts), when
Ray was up, when the worker actors were asked for, the first document sent and
the first result back, and for each worker when its process started (to 0.01 s), when it imported the worker's
module (preloaded after its process registered, or at the actor's creation), when the actor was made and when its first ingest began. The 1-minute load average is
printed before and after each build, because the machine may be shared.

The same build's wall time moves by 10 to 26 % from one run to the next on the development machine
(2 cores, shared): each verdict therefore comes from ``--rounds N``: the modes run N times, interleaved,
in alternating order (forward, then backward, ...), and every ratio is that of the modes' median seconds,
printed with the same ratio within each round (two builds minutes apart) and how many rounds met the
target. While each build runs, this process reads /proc (``TreeCPU``) for the CPU seconds of the build's
processes by role (the driver; its workers: Ray's actors or the local build's worker processes; Ray's
own processes), their start and imports included, and of every other process of the machine: the
load the build shared the 2 cores with, measured ("others' CPU s per build s": 0 on an idle machine;
the 1-minute load average counts the build's own processes). ``--baseline DIR`` also runs every mode on
the code in ``DIR/src`` (``MODE@pre``, beside the same mode on this tree in every round; or only the
modes that ``--modes`` names ``MODE@pre``) and prints
each mode's speed ratio of this tree against it. Each worker's ``between_ingests`` is its time
between the end of one document and the start of the next, and ``idle_between_ingests`` the part of
that time in no call: the result's way to the driver and the next document's way to the worker. The
rest is work: the worker encodes there the figures the driver cut from sheets ("images" calls) and
texts ahead ("texts").

Stop 24: the workers count their CPU seconds by kind of work (``ingest``, ``read signs``, ``encode images``,
``encode texts``, their execution thread's; "rest": the rest of their processes'), printed per Ray mode
under the tables: the same work in 1 and 2 workers, so that a 2-worker build whose workers cost more CPU
shows where. ``--probe`` runs, before each round, a fixed cache-resident Python loop alone and then two
copies at once (``ray_worker_profile.py --variants calibrate,calibrate*2``) and prints how much more
CPU the same loop cost with both cores busy: the machine's own price of a second busy core at that time
(a 2-worker build pays it, a 1-worker build on an otherwise idle machine does not).

Stop 30: each build's CPU seconds (every process: the driver, its workers, Ray's own; the driver's imports before
the build's clock left out), its wall seconds and the cores it kept busy (CPU / wall), per mode, and for each
2-process build the largest speed-up over its 1-process build that the machine's cores allow: ``cores / (the
1-process build's cores used)`` with the same total CPU, and ``the 1-process build's wall / (the 2-process build's
CPU / cores)`` with its own; a 1-worker build that already keeps more than one core busy leaves less than 2x.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def inputs(documents: int) -> list[str]:
    """The first ``documents`` design grants and EP1667425A1; ``documents=0``: the whole shared data
    with drawings of those kinds (every design grant, both EP documents, both US applications; not the other folders)."""
    grants = sorted(p for p in (SHARED / "us-design-grants").iterdir() if p.is_dir())
    if documents == 0:
        more = [p for folder in ("ep-documents", "us-applications") for p in sorted((SHARED / folder).iterdir())
                if p.is_dir()]
        return [str(p) for p in grants + more]
    return [str(p) for p in grants[:documents]] + [str(SHARED / "ep-documents" / "EP1667425A1")]


def describe(documents: int) -> str:
    return ("all design grants, both EP documents and both US applications" if documents == 0
            else f"{documents} design grants + EP1667425A1")


def one(mode: str, paths: list[str], collection: str, skip_ocr: bool, address: str | None = None) -> dict:
    """One build in this process; returns its seconds and counts. ``address``: the Ray instance a
    ``running`` mode joins (started by ``run_mode``)."""
    import torch

    from figsearch.pipeline.building import build

    workers = int(mode[-1])
    # the encoders of a local build run in its own process with one thread per process allowed; on
    # Ray they run in the workers (one thread each, Ray's default) and the driver encodes nothing
    torch.set_num_threads(1 if mode.startswith(RAY_MODES) else workers)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started, wall_start = time.perf_counter(), time.time()
    cluster = None
    if mode.startswith(RAY_MODES):
        from figsearch.pipeline import distributed
        from figsearch.pipeline.distributed import RayCluster

        distributed.DRIVER_INGEST = mode.startswith("rayown")
        if mode.startswith("raycore"):  # one core per worker: its encoders on one thread (before stop 28)
            distributed.encoder_threads = lambda local, workers, cpus: 1

        cluster = RayCluster(address or "local", workers=workers)
    ready = time.perf_counter()
    stages, last, ends = {}, [ready], {}

    def on_stage(name: str, _report) -> None:
        now = time.perf_counter()
        stages[name] = round(now - last[0], 2)
        last[0] = now
        ends[name] = time.time()

    try:
        # overlapN: the local build as `figsearch build --jobs N` runs it by default (overlapped stages); localN
        # runs the stages one after the other (`--no-overlap`, and the Python API's build)
        report = build(paths, collection, jobs=workers, skip_ocr=skip_ocr, cluster=cluster, on_stage=on_stage,
                       overlap=mode.startswith("overlap"))
    finally:
        if cluster is not None:
            cluster.close()
    seconds = time.perf_counter() - started
    # Ray's own processes (gcs_server, raylet, its Python helpers, idle prestarted workers) are this
    # process's descendants while the instance it started lives: their CPU over the build
    ray_processes = descendants_cpu() if cluster is not None and not address else {}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    driver_cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    # Ray's workers report their own CPU seconds; the local build's OCR readers are children of a
    # forkserver, so this process's RUSAGE_CHILDREN misses them (it counted 13.7 of a local
    # 2-process build's CPU s): not reported
    helpers_cpu = sum(w.get("cpu", 0.0) for w in cluster.worker_timings) if cluster is not None else None
    waits = {name: round(value, 2) for name, value in (cluster.timings if cluster else {}).items()}
    # Ray starts in the background while the driver plans the input: what counts as Ray's start is
    # the time the driver spent waiting for it (creating the cluster object, then waiting in the build)
    startup = (ready - started) + (cluster.timings.get("wait for ray start", 0.0) if cluster else 0.0)
    return {"mode": mode, "seconds": round(seconds, 2), "startup": round(startup, 2), "stages": stages,
            "driver_cpu": round(driver_cpu, 2),
            # the driver's CPU before the build's clock (its imports; nothing else of the build has
            # started then): taken out of the tree's CPU for the cores the build kept busy (``cores_used``)
            "driver_cpu_before_clock": round(before.ru_utime + before.ru_stime, 2), "workers_cpu": None if helpers_cpu is None else round(helpers_cpu, 2),
            "driver_waits": waits,
            "worker_seconds": cluster.worker_timings if cluster else [],
            "timeline": timeline(wall_start, ends, cluster) if cluster else {},
            "start_timeline": start_timeline(wall_start, cluster) if cluster else {},
            "signs_read": dict(cluster.reads) if cluster else {},
            "drawings_encoded": dict(cluster.encoded) if cluster else {},
            "texts_encoded": dict(cluster.texts) if cluster else {},
            "driver_ingested": {k: round(v, 2) for k, v in getattr(cluster, "own_ingest", {}).items()},
            "driver_threads_cpu": threads_cpu(),
            "ray_processes_cpu": ray_processes,
            "documents": report.ingest.documents, "figures": report.ingest.figures,
            "signs": report.signs.signs if report.signs else None,
            "vectors": sum(e.embedded for e in report.index.embedded)}


#: the modes that build on Ray: an instance started by the build, or one running before it
RAY_MODES = ("ray", "running")


def start_timeline(wall_start: float, cluster) -> dict:
    """Seconds from the build's start to each of the driver's first steps on Ray (``RayCluster.marks``)
    and, per worker, to the start of its process, the import of the worker's module ("import worker
    module", start and end: preloaded once the process registered, or at the actor's creation), the
    actor's start and its first ingest."""
    out: dict = {"driver": {step: round(t - wall_start, 2) for step, t in getattr(cluster, "marks", {}).items()},
                 "workers": []}
    own = [(round(a - wall_start, 2), round(b - wall_start, 2)) for w, a, b in cluster.events if w == "driver ingest"]
    if own:
        out["driver"]["ingested itself"] = own
    for born, events in cluster.worker_timelines:
        worker = {}
        for name, a, b in events:
            if name == "process":
                worker["process started"] = round(a - wall_start, 2)
            elif name == "import worker module":
                worker["import worker module"] = (round(a - wall_start, 2), round(b - wall_start, 2))
            elif name == "ingest" and "first ingest" not in worker:
                worker["first ingest"] = round(a - wall_start, 2)
        if born:
            worker["actor started"] = round(born - wall_start, 2)
        out["workers"].append(worker)
    return out


def threads_cpu() -> dict[str, float]:
    """This process's CPU seconds by thread name (Linux ``/proc``; the names are the kernel's: Python's
    own threads are all "python" there, Ray's threads carry their names), the largest first."""
    out: collections.Counter = collections.Counter()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path("/proc/self/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        out[name] += (int(fields[11]) + int(fields[12])) / tick
    return {name: round(value, 2) for name, value in out.most_common() if value >= 0.05}


def descendants_cpu(root: int | None = None) -> dict[str, float]:
    """CPU seconds of this process's (or ``root``'s) living descendants by command name (Linux ``/proc``; their own,
    not what they reaped: the raylet reaps the killed actors), the largest first; Ray's Python
    helpers by their script's name, the processes it names itself by their name (``ray::IDLE``: an
    idle worker process; ``ray::DashboardAgent``...; ``ray::_Worker``: a build's actor whose
    process has not exited yet, counted by itself in ``workers_cpu``)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents, info = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
        words = [w.decode(errors="replace") for w in cmdline if w]
        # Ray's Python helpers are all "python" to the kernel: name them by their script
        script = next((Path(w).stem for w in words[1:3] if w.endswith(".py")), None)
        if words and words[0].startswith("ray::"):
            name = words[0].split()[0]  # ray::IDLE (a worker process), ray::DashboardAgent...
        elif script:
            name = script
        info[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    top = root or os.getpid()
    mine, out = _under(parents, top), collections.Counter()
    for pid in mine - {top}:
        if pid in info:
            out[info[pid][0]] += info[pid][1]
    return {name: round(value, 2) for name, value in out.most_common() if value >= 0.05}


#: one character per column of the timeline: what a worker did most of that column's time
MARKS = {"decode": "D", "signs": "S", "encode": "E", "images": "E", "texts": "T", "read": "R"}


def _union(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] covered by ``intervals``."""
    total, reach = 0.0, start
    for a, b in sorted(intervals):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def timeline(wall_start: float, ends: dict[str, float], cluster, columns: int = 100) -> dict:
    """Where each worker and the driver spent each stage: busy and idle seconds per stage, when
    each worker ended its last ingest, and a one-line-per-process picture of the build (one
    column per ``total/columns`` seconds: D decode, S reading signs while ingesting, E encoding
    drawings, R reading signs in the signs stage, T encoding texts, '.' idle, 'l' idle while
    loading a model in the background; the driver: '#' working, '.' waiting for the workers)."""
    bounds, previous = {}, wall_start
    for name in ("ingest", "signs", "index"):
        if name in ends:
            bounds[name] = (previous, ends[name])
            previous = ends[name]
    total = previous - wall_start
    step = total / columns if total > 0 else 1.0
    out: dict = {"stage_ends": {name: round(b - wall_start, 1) for name, (_, b) in bounds.items()}, "workers": []}
    lines = []
    for n, (born, events) in enumerate(cluster.worker_timelines):
        calls = [(w, a, b) for w, a, b in events if w in ("ingest", "read", "images", "texts")]
        loads = [(a, b) for w, a, b in events if w.startswith("load")]
        worker = {"started": round(born - wall_start, 1) if born else None,
                  "ingests": sum(w == "ingest" for w, _, _ in calls)}
        for name, (a, b) in bounds.items():
            busy = _union([(x, y) for _, x, y in calls], a, b)
            worker[name] = {"busy": round(busy, 1), "idle": round(b - a - busy, 1),
                            "loading": round(_union(loads, a, b), 1)}
        ingest_ends = [b for w, _, b in calls if w == "ingest"]
        worker["last_ingest_end"] = round(max(ingest_ends) - wall_start, 1) if ingest_ends else None
        first = [a for w, a, _ in calls if w == "ingest"]
        worker["first_ingest_start"] = round(min(first) - wall_start, 1) if first else None
        # between one document's end and the next one's start on this worker: the time between the
        # two calls (``between_ingests``), and of it the time in no call (``idle_between_ingests``): the
        # worker also encodes there the figures the driver cut from sheets ("images") and texts ahead
        spans = sorted((a, b) for w, a, b in calls if w == "ingest")
        gaps = [(earlier[1], later[0]) for earlier, later in zip(spans, spans[1:]) if later[0] > earlier[1]]
        others = [(x, y) for w, x, y in calls if w != "ingest"]
        worker["between_ingests"] = round(sum(b - a for a, b in gaps), 2)
        worker["idle_between_ingests"] = round(sum(b - a - _union(others, a, b) for a, b in gaps), 2)
        out["workers"].append(worker)
        # the picture: inside an ingest, "decode" and "encode" events are marked, the rest is signs
        detail = [(MARKS[w], a, b) for w, a, b in events if w in ("decode", "encode", "read", "images", "texts")]
        detail += [("S", a, b) for w, a, b in events if w == "ingest"]
        line = []
        for column in range(columns):
            a = wall_start + column * step
            b = a + step
            share = collections.Counter()
            for mark, x, y in detail:
                share[mark] += max(0.0, min(b, y) - max(a, x))
            # an ingest's decode and encode parts are counted twice (also as "S"): take them out
            share["S"] -= share["D"] + share["E"] - sum(max(0.0, min(b, y) - max(a, x))
                                                         for w, x, y in events if w == "images")
            busy = sum(v for v in share.values() if v > 0)
            if busy < step / 2:
                line.append("l" if _union(loads, a, b) >= step / 2 else ".")
            else:
                line.append(max(share, key=share.get))
        lines.append(f"worker {n} " + "".join(line))
    waits = [(a, b) for w, a, b in cluster.events if w == "wait"]
    driver = {}
    for name, (a, b) in bounds.items():
        waited = _union(waits, a, b)
        driver[name] = {"working": round(b - a - waited, 1), "waiting": round(waited, 1)}
    arrived = [a for w, a, _ in cluster.events if w == "arrived"]
    if arrived and "ingest" in bounds:
        driver["last_result_arrived"] = round(max(arrived) - wall_start, 1)
    out["driver"] = driver
    picture = []
    for column in range(columns):
        a = wall_start + column * step
        picture.append("." if _union(waits, a, a + step) >= step / 2 else "#")
    marks = [" "] * columns
    for name, (_, b) in bounds.items():
        marks[min(columns - 1, int((b - wall_start) / step))] = "|"
    lines.append("driver   " + "".join(picture))
    lines.append("stages   " + "".join(marks) + f"  (one column: {step:.2f} s; | ends ingest, signs, index)")
    out["picture"] = lines
    return out


#: the suffix of a mode run on the baseline's code (``--baseline``)
BASELINE = "@pre"


def probe() -> dict:
    """The CPU seconds of a fixed loop alone and of each of two copies run at once, with the others' cores
    meanwhile (``ray_worker_profile.py``'s ``calibrate``): ``both busy / alone`` above 1 is what the
    machine charges the same work for a second busy core at this time."""
    script = Path(__file__).resolve().parent / "ray_worker_profile.py"
    done = subprocess.run([sys.executable, str(script), "--variants", "calibrate,calibrate*2"], capture_output=True,
                          text=True, check=True)
    alone, pair = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    both = statistics.mean(pair["cpu per copy"])
    return {"alone cpu": alone["cpu per copy"][0], "both busy cpu": round(both, 2),
            "both busy / alone": round(both / alone["cpu per copy"][0], 3),
            "others' cores": (alone["others' cores"], pair["others' cores"])}


def run_mode(mode: str, documents: int, scratch: str, skip_ocr: bool, baseline: str | None = None) -> dict:
    """One build in a fresh process; ``MODE@pre`` builds with ``baseline``'s ``src`` first on the path."""
    build = mode.removesuffix(BASELINE)
    head = RunningRay(int(build[-1]), Path(scratch) / "ray") if build.startswith("running") else None
    load_before = os.getloadavg()[0]
    command = [sys.executable, __file__, "--one", build, "--collection", str(Path(scratch) / f"{build}-{documents}"),
               "--documents", str(documents)] + (["--skip-ocr"] if skip_ocr else [])
    env = dict(os.environ)
    if mode.endswith(BASELINE):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(baseline, "src")), env.get("PYTHONPATH")) if p)
    try:
        if head is not None:
            command += ["--address", head.start()]
            load_before, before = os.getloadavg()[0], head.cpu()
            # a driver joins an instance with Ray's token authentication (the default of 'ray start')
            # only with RAY_AUTH_MODE=token (Ray 2.60); the instance was started with it too
            env["RAY_AUTH_MODE"] = "token"
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        sampler = TreeCPU(process.pid, head.process.pid if head is not None else None)
        try:
            stdout, stderr = process.communicate()
        finally:
            tree = sampler.stop()
        done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        during = head.cpu() if head is not None else {}
    finally:
        if head is not None:
            head.stop()
    if done.returncode != 0:
        sys.exit(f"{mode} failed (exit status {done.returncode}):\n{done.stderr[-3000:]}\n{done.stdout[-2000:]}")
    shutil.rmtree(Path(scratch) / f"{build}-{documents}", ignore_errors=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["mode"] = mode
    result["load"] = (round(load_before, 2), round(os.getloadavg()[0], 2))
    result["tree_cpu"] = tree
    if head is not None:
        # the instance's processes' CPU during the build (the workers it started for the build
        # exited with it, before this count: theirs is in workers_cpu)
        result["ray_processes_cpu"] = {name: round(seconds - before.get(name, 0.0), 2) for name, seconds in
                                       during.items() if seconds - before.get(name, 0.0) >= 0.05}
        result["ray_start_seconds"] = head.seconds
    return result


#: the environment docs/cluster.md gives ``ray start`` on every node: the workers at the driver's
#: niceness, and the worker's module imported by each worker process as soon as it has started
NODE_ENVIRONMENT = {"RAY_worker_niceness": "0", "RAY_preload_python_modules": "figsearch.pipeline.ray_worker"}


class RunningRay:
    """A Ray instance started before a build, as on a cluster (``ray start --head --block``, with
    the workers' niceness that docs/cluster.md asks for), in its own temporary folder, and stopped
    after it: the ``ray start`` process is ended, then whatever it started that is still alive
    (by process id: nothing else of Ray on the machine is touched)."""

    def __init__(self, cpus: int, temp_dir: Path) -> None:
        self.cpus, self.temp_dir = cpus, temp_dir
        self.process: subprocess.Popen | None = None
        self.seconds = 0.0

    def start(self) -> str:
        """Start the instance; returns its address once it answers."""
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        output = self.temp_dir / "ray-start.log"
        ray = Path(sys.executable).with_name("ray")
        command = [str(ray) if ray.exists() else "ray", "start", "--head", "--block", "--port=0",
                   f"--num-cpus={self.cpus}", "--include-dashboard=false", "--disable-usage-stats",
                   f"--temp-dir={self.temp_dir}"]
        started = time.perf_counter()
        with open(output, "w") as log:
            # in this process's session, as the builds' processes: with Linux's autogroup scheduling a
            # session of its own would give the instance its own share of a loaded machine's CPU
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **NODE_ENVIRONMENT, "RAY_AUTH_MODE": "token"})
        while True:
            text = output.read_text(errors="replace")
            found = [line.split("--address=", 1)[1].strip().strip("'\"") for line in text.splitlines()
                     if "ray start --address=" in line]
            if found and "will now block" in text:
                self.seconds = round(time.perf_counter() - started, 2)
                return found[0]
            if self.process.poll() is not None or time.perf_counter() - started > 300:
                self.stop()
                sys.exit(f"ray start did not start an instance:\n{text[-3000:]}")
            time.sleep(0.2)

    def cpu(self) -> dict[str, float]:
        """CPU seconds of the instance's living processes by name (``descendants_cpu``)."""
        return descendants_cpu(self.process.pid) if self.process is not None else {}

    def stop(self) -> None:
        if self.process is None:
            return
        started = _descendants(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        deadline = time.time() + 30
        for pid in started:  # Ray's processes die with the process that started them; any left are ended
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        self.process = None


def _cpus() -> int:
    """The cores this process may run on (Linux: its affinity): ``distributed._cpus``, without importing the
    pipeline into the process that only runs and reads the builds."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _machine_busy() -> tuple[float, float]:
    """(CPU seconds the whole machine has been busy, seconds stolen by the hypervisor) since boot,
    from /proc/stat (user, nice, system, irq, softirq; steal apart)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / tick, fields[7] / tick


def _role(pid: int, root: int) -> str:
    """Which part of a build a process of its tree is: the build's process ("driver"), one of its
    workers ("workers": a Ray actor, ``ray::_Worker``, or a local build's ingest or OCR process, which
    multiprocessing starts), or Ray's own (its GCS, raylet, agents, idle worker processes)."""
    if pid == root:
        return "driver"
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "ray"
    first = words[0].decode(errors="replace")
    if first.startswith("ray::_Worker"):
        return "workers"
    if first.startswith("ray::") or any(b"ray" in w and w.endswith(b".py") for w in words[:3]):
        return "ray"
    if any(b"multiprocessing" in w for w in words):
        return "workers"
    return "ray" if any(b"ray" in w for w in words[:1]) else "other children"


class TreeCPU:
    """CPU seconds of a build's processes by role (``_role``), and of every other process of the machine
    over the build: the load the build shared the cores with, the quantity that makes one build's wall
    time differ from the next one's. Reads /proc every ``every`` seconds in a thread of this process:
    a process that ends between two reads loses at most that much CPU from its count. ``head``: a
    running Ray instance's process, whose tree counts as the build's (from the build's start on)."""

    def __init__(self, root: int, head: int | None = None, every: float = 0.3) -> None:
        import threading

        self.root, self.head, self.every = root, head, every
        self.seen: dict[int, list] = {}  # pid -> [role, cpu at first sight (preexisting), last cpu]
        self.started, self.busy0, self.steal0 = time.time(), *_machine_busy()
        self.self0 = time.process_time()
        self._sample(first=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self, first: bool = False) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        parents, cpu = {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                parents[int(entry.name)] = int(fields[1])
                cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        mine = _under(parents, self.root) | (_under(parents, self.head) if self.head else set())
        for pid in mine:
            if pid in cpu:
                known = self.seen.get(pid)
                if known is None:
                    # a running instance's processes count from the build's start; the rest from 0
                    self.seen[pid] = known = [None, cpu[pid] if first and pid != self.root else 0.0, 0.0]
                known[0] = _role(pid, self.root) if known[0] in (None, "ray") else known[0]
                known[2] = cpu[pid]

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def stop(self) -> dict:
        """Stop reading; the CPU seconds by role, ``others`` (every other process of the machine,
        this benchmark's own process left out), ``stolen`` (by the hypervisor) and the seconds."""
        self._stop.set()
        self._thread.join()
        busy, steal = _machine_busy()
        out: collections.Counter = collections.Counter()
        for role, base, last in self.seen.values():
            out[role] += max(0.0, last - base)
        build = sum(out.values())
        mine = time.process_time() - self.self0
        out["others"] = max(0.0, busy - self.busy0 - build - mine)
        out["stolen"] = steal - self.steal0
        out["seconds"] = time.time() - self.started
        return {k: round(v, 2) for k, v in out.items()}


def _descendants(root: int) -> list[int]:
    """The ids of ``root``'s living descendants (Linux ``/proc``)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return sorted(_under(parents, root) - {root})


def _under(parents: dict[int, int], root: int) -> set[int]:
    """``root`` and every process below it, from a map of process id -> parent id."""
    mine, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                changed = True
    return mine


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def ray_own_cpu(result: dict) -> float:
    """CPU seconds of Ray's own processes in a build (those it started, less the build's actors)."""
    return sum(v for k, v in (result.get("ray_processes_cpu") or {}).items() if k != "ray::_Worker")


#: the workers' kinds of work whose CPU seconds they count (``_Worker._timed`` and the like, stop 24)
CALLS = ("ingest", "read signs", "encode images", "encode texts")


def calls_cpu(result: dict) -> dict[str, float]:
    """The CPU seconds of a Ray build's workers by kind of work, summed over its workers (their
    execution threads only), with "rest": the rest of their processes' CPU seconds (loads, Ray's
    threads, the calls' serialisation); empty for a build whose workers do not count them (a baseline's)."""
    workers = result.get("worker_seconds") or []
    if not workers or not any(f"{call} cpu" in w for w in workers for call in CALLS):
        return {}
    out = {call: sum(w.get(f"{call} cpu", 0.0) for w in workers) for call in CALLS}
    out["rest"] = sum(w.get("cpu", 0.0) for w in workers) - sum(out.values())
    return out


def calls_cpu_table(runs: dict[str, list[dict]]) -> None:
    """Where the Ray builds' workers' CPU seconds go (medians over the rounds): the same work in 1
    and 2 workers, so that a kind of work whose CPU grows with 2 workers shows which (stop 24)."""
    rows = {mode: [c for c in map(calls_cpu, rs) if c] for mode, rs in runs.items()}
    rows = {mode: cs for mode, cs in rows.items() if cs}
    if not rows:
        return
    kinds = CALLS + ("rest",)
    print("\nthe workers' CPU s by kind of work, all workers together (median over the rounds; each round's total):")
    print(f"\n| build | {' | '.join(kinds)} | total (each round) |")
    print("|---|" + "---|" * (len(kinds) + 1))
    for mode, cs in rows.items():
        cells = " | ".join(f"{statistics.median(c[k] for c in cs):.1f}" for k in kinds)
        totals = ", ".join(f"{sum(c.values()):.1f}" for c in cs)
        print(f"| {mode} | {cells} | {totals} |")


#: the roles of a build's processes whose CPU ``TreeCPU`` counts (``_role``)
ROLES = ("driver", "workers", "ray", "other children")


def cores_used(result: dict) -> tuple[float, float, float] | None:
    """(CPU s, wall s, cores used) of one build: the CPU seconds of all its processes (the driver, its
    workers, Ray's own; ``TreeCPU``) less the driver's before the build's clock (its imports), over the
    build's wall seconds: how many cores it kept busy on average. None without the tree's CPU."""
    tree = result.get("tree_cpu") or {}
    if not tree or not result.get("seconds"):
        return None
    cpu = sum(tree.get(role, 0.0) for role in ROLES) - result.get("driver_cpu_before_clock", 0.0)
    return cpu, result["seconds"], cpu / result["seconds"]


def speedup_bounds(one: tuple[float, float, float], two: tuple[float, float, float], cores: int) -> tuple[float, float]:
    """The largest speed-up of a build on ``cores`` cores over ``one`` (its (CPU s, wall s, cores used)):
    with the same total CPU as ``one``, ``cores / one's cores used`` (a build cannot keep more than
    ``cores`` busy); with ``two``'s own CPU, ``one's wall / (two's CPU / cores)``. A 1-worker build that
    already keeps more than one core busy leaves less than 2x to a 2-worker build on 2 cores."""
    return cores / one[2], one[1] / (two[0] / cores)


def cores_table(runs: dict[str, list[dict]], cores: int) -> None:
    """Per mode its CPU s (every process of the build, after the clock started), wall s and cores used
    (medians over the rounds), and for the 2-process builds the largest speed-up over their 1-process
    build that ``cores`` cores allow (``speedup_bounds``), beside the measured one."""
    used = {mode: [c for c in map(cores_used, rs) if c] for mode, rs in runs.items()}
    used = {mode: cs for mode, cs in used.items() if cs}
    if not used:
        return
    medians = {mode: tuple(statistics.median(c[i] for c in cs) for i in range(3)) for mode, cs in used.items()}
    print(f"\nCPU s of every process of each build (driver, workers, Ray's own; the driver's imports before the "
          f"clock left out), wall s and cores used = CPU / wall (medians over the rounds; {cores} cores here):")
    for mode, (cpu, wall, busy) in medians.items():
        each = ", ".join(f"{c[2]:.2f}" for c in used[mode])
        # on a shared machine the cores left to the build are fewer: the others' share, measured
        others = statistics.median(r["tree_cpu"].get("others", 0.0) / r["tree_cpu"]["seconds"] for r in runs[mode]
                                   if (r.get("tree_cpu") or {}).get("seconds"))
        print(f"  {mode}: CPU {cpu:.1f} s, wall {wall:.1f} s, cores used {busy:.2f} (each round {each}; "
              f"other processes {others:.2f} cores)")
    for tree in ("", BASELINE):
        for single, double in (("ray1", "ray2"), ("raycore1", "ray2"), ("local1", "local2"), ("local1", "overlap2"),
                               ("running1", "running2")):
            single, double = single + tree, double + tree
            if single in medians and double in medians:
                same, own = speedup_bounds(medians[single], medians[double], cores)
                print(f"  {double} vs {single} on {cores} cores: at most {same:.2f}x with {single}'s CPU "
                      f"({cores} / {medians[single][2]:.2f} cores used), at most {own:.2f}x with {double}'s own CPU "
                      f"({medians[single][1]:.1f} s / ({medians[double][0]:.1f} CPU s / {cores})); measured "
                      f"{medians[single][1] / medians[double][1]:.2f}x")


def report(documents: int, skip_ocr: bool, runs: dict[str, list[dict]]) -> None:
    """The table and the ratios of one input size; with several rounds, each mode's median build."""
    results = {mode: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for mode, rs in runs.items()}
    first = next(iter(results.values()))
    everything = [r for rs in runs.values() for r in rs]
    print(f"\ninput: {describe(documents)} ({first['documents']} documents, {first['figures']} "
          f"figures, {first['vectors']} vectors), OCR {'off' if skip_ocr else 'on'}, "
          f"{len(next(iter(runs.values())))} round(s), median build per mode; "
          f"1-minute load average {min(r['load'][0] for r in everything)} to "
          f"{max(r['load'][1] for r in everything)}")
    # the load each build shared the machine with, measured (not the load average, which counts the
    # build's own processes): other processes' CPU seconds per second of the build
    # CPU seconds (medians over the rounds) of the build's whole processes, their start and imports included
    print("\n| build | median s | each round's s | CPU s: driver, workers, Ray's own (all) | others' CPU s per "
          "build s (each round) |")
    print("|---|---|---|---|---|")
    for mode, rs in runs.items():
        trees = [r.get("tree_cpu") or {} for r in rs]
        roles = ", ".join(f"{statistics.median(t.get(role, 0.0) for t in trees):.1f}"
                          for role in ("driver", "workers", "ray"))
        roles += f" ({statistics.median(sum(t.get(k, 0.0) for k in ('driver', 'workers', 'ray')) for t in trees):.1f})"
        others = ", ".join(f"{t.get('others', 0.0) / t['seconds']:.2f}" for t in trees if t.get("seconds"))
        each = ", ".join(f"{r['seconds']:.1f}" for r in rs)
        print(f"| {mode} | {statistics.median(r['seconds'] for r in rs):.1f} | {each} | {roles} "
              f"| {others} |")
    print("\nthe median build of each mode (with an even number of rounds, the slower of the middle two):")
    print("\n| build | seconds | of which Ray start | ingest, signs, embed+index | driver CPU s | workers' CPU s "
          "| CPU s per wall s | Ray's own processes' CPU s | load before, after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for mode, result in results.items():
        stages = ", ".join(f"{result['stages'].get(name, 0):.1f}" for name in ("ingest", "signs", "index"))
        workers_cpu = result.get("workers_cpu")
        # how many cores the build kept busy on average (Ray's own processes not counted)
        busy = (f"{(result['driver_cpu'] + workers_cpu) / result['seconds']:.2f}"
                if workers_cpu is not None and result["seconds"] else "n/a")
        workers = "n/a" if workers_cpu is None else f"{workers_cpu:.1f}"
        ray_own = f"{ray_own_cpu(result):.1f}"
        print(f"| {mode} | {result['seconds']:.1f} | {result['startup']:.1f} | {stages} | {result['driver_cpu']:.1f} | "
              f"{workers} | {busy} | {ray_own if mode.startswith(RAY_MODES) else 'n/a'} | {result['load'][0]}, "
              f"{result['load'][1]} |")
    calls_cpu_table(runs)
    cores_table(runs, _cpus())
    # each mode's median over the rounds (with an even number of rounds, the mean of the middle two)
    seconds = {mode: statistics.median(r["seconds"] for r in rs) for mode, rs in runs.items()}
    # a cluster is started once and serves many builds: the ratios also without its start
    working = {mode: statistics.median(r["seconds"] - r["startup"] for r in rs) for mode, rs in runs.items()}
    others = [r["tree_cpu"]["others"] / r["tree_cpu"]["seconds"] for r in everything
              if (r.get("tree_cpu") or {}).get("seconds")]
    if others:
        print(f"\nthe machine's other processes kept {statistics.median(others):.2f} cores busy during the median "
              f"build ({min(others):.2f} to {max(others):.2f}; 0 on an idle machine): with more than about 0.1 "
              "the wall times carry that load, and only ratios within a round say much")

    def ratio(slow: str, fast: str, what: str, target: float | None) -> None:
        if slow in seconds and fast in seconds:
            value, without = seconds[slow] / seconds[fast], working[slow] / working[fast]
            goal = (f" (target >= {target}x: {'met' if value >= target else 'MISSED'}; without the start "
                    f"{'met' if without >= target else 'MISSED'})") if target else ""
            # the same ratio within each round (the two builds minutes apart, in alternating order):
            # how much of it is the machine
            paired = [a["seconds"] / b["seconds"] for a, b in zip(runs[slow], runs[fast])]
            rounds = ""
            if len(paired) > 1:
                held = f", {sum(p >= target for p in paired)} of {len(paired)} met" if target else ""
                rounds = f"; round by round {', '.join(f'{p:.2f}' for p in paired)}{held}"
            print(f"{what}: {value:.2f}x, without starting Ray {without:.2f}x{goal}{rounds}")

    for tree, label in (("", ""), (BASELINE, "baseline: ")):
        if not any(mode.endswith(BASELINE) for mode in results) and tree:
            continue
        ratio("ray1" + tree, "ray2" + tree, f"{label}Ray 2 workers vs 1", 1.7)
        ratio("local1" + tree, "ray1" + tree, f"{label}Ray 1 worker vs local 1 process (speed ratio)", 0.9)
        ratio("local2" + tree, "ray2" + tree, f"{label}Ray 2 workers vs local 2 processes (speed ratio)", 0.9)
        ratio("local1" + tree, "local2" + tree, f"{label}local 2 processes vs 1 (for reference)", None)
        # the local 2-process build as `figsearch build --jobs 2` runs it by default (stages overlapped)
        ratio("overlap2" + tree, "ray2" + tree,
              f"{label}Ray 2 workers vs local 2 processes overlapped, figsearch build's default (speed ratio)", 0.9)
        ratio("local2" + tree, "overlap2" + tree, f"{label}local 2 processes: overlapped vs stages in turn", None)
        # against a 1-worker build kept to one core (its encoders on one thread): what 2 workers give over 1 core
        ratio("raycore1" + tree, "ray2" + tree, f"{label}Ray 2 workers vs 1 worker on one core (for reference)", None)
        ratio("raycore1" + tree, "ray1" + tree, f"{label}Ray 1 worker: encoders on 2 threads vs on 1", None)
        # the driver's own ingest while Ray starts, against the same build without it
        ratio("ray1" + tree, "rayown1" + tree, f"{label}1 worker, the driver ingesting while Ray starts vs not", None)
        ratio("ray2" + tree, "rayown2" + tree, f"{label}2 workers, the driver ingesting while Ray starts vs not", None)
        # Ray as on a cluster: an instance running before the build (its start not counted)
        ratio("running1" + tree, "running2" + tree, f"{label}running Ray, 2 workers vs 1", 1.7)
        ratio("local1" + tree, "running1" + tree, f"{label}running Ray, 1 worker vs local 1 process (speed ratio)", 0.9)
        ratio("local2" + tree, "running2" + tree, f"{label}running Ray, 2 workers vs local 2 processes (speed ratio)",
              0.9)
    for mode in results:  # this tree against the baseline, the same build (above 1.00x: this tree faster)
        if not mode.endswith(BASELINE) and mode + BASELINE in results:
            ratio(mode + BASELINE, mode, f"{mode}: this tree vs the baseline (speed ratio)", None)
    for mode, result in results.items():
        if mode.startswith("running"):
            print(f"{mode}: 'ray start' took {result.get('ray_start_seconds')} s before the build (not counted)")
    for mode, result in results.items():
        if mode.startswith(RAY_MODES):  # (a baseline's build too: MODE@pre)
            print(f"{mode}: signs read {result['signs_read']}, drawings encoded {result['drawings_encoded']}, "
                  f"texts encoded {result.get('texts_encoded')}, ingested by the driver while Ray started "
                  f"{result.get('driver_ingested')}, driver waits {result['driver_waits']}, "
                  f"driver's CPU s by thread {result.get('driver_threads_cpu')}, Ray's own processes' CPU s "
                  f"{result.get('ray_processes_cpu')} (all but the build's actors "
                  f"{ray_own_cpu(result):.1f})")
            for n, worker in enumerate(result["worker_seconds"]):
                print(f"  worker {n}: {worker}")
            line = result.get("timeline") or {}
            for n, worker in enumerate(line.get("workers", [])):
                print(f"  worker {n} timeline: {worker}")
            if line:
                print(f"  driver: {line['driver']}; stages end at {line['stage_ends']} s")
                for row in line["picture"]:
                    print("  " + row)
            start = result.get("start_timeline") or {}
            if start:
                print(f"  start (s from the build's start): driver {start['driver']}")
                for n, worker in enumerate(start["workers"]):
                    print(f"  start, worker {n}: {worker}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", default="20",
                        help="design grants to build (plus one EP document); several sizes: 6,20; 'all' (or 0): "
                             "all design grants, EP documents and US applications of the shared data")
    parser.add_argument("--skip-ocr", action="store_true", help="leave out the reference signs")
    parser.add_argument("--modes", default="local1,local2,ray1,ray2")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the modes this many times, interleaved; each mode's median build is reported")
    parser.add_argument("--baseline", metavar="DIR",
                        help="a copy of the project (DIR/src) to build with too: each mode also runs as MODE@pre "
                             "on that code, beside this tree's, in every round (or only the modes named MODE@pre "
                             "in --modes)")
    parser.add_argument("--probe", action="store_true",
                        help="before each round, the CPU price of a second busy core (a fixed loop alone and two at once)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--collection", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [0 if n == "all" else int(n) for n in args.documents.split(",")]
    if args.one:
        print(json.dumps(one(args.one, inputs(sizes[0]), args.collection, args.skip_ocr, args.address)))
        return
    if not (SHARED / "us-design-grants").is_dir():
        sys.exit(f"{SHARED} is absent: the benchmark needs ../shared/data")
    modes = args.modes.split(",")
    if args.baseline:
        if not Path(args.baseline, "src", "figsearch").is_dir():
            sys.exit(f"--baseline {args.baseline}: no src/figsearch there")
        if not any(mode.endswith(BASELINE) for mode in modes):  # none named: every mode on both
            modes = [m for mode in modes for m in (mode + BASELINE, mode)]
    elif any(mode.endswith(BASELINE) for mode in modes):
        sys.exit(f"a mode ending in {BASELINE} needs --baseline DIR")
    all_runs = {}
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as scratch:
        for documents in sizes:
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            probes = []
            for round_ in range(args.rounds):
                if args.probe:
                    probes.append(probe())
                    print(json.dumps({"probe": round_ + 1, **probes[-1]}), flush=True)
                # alternating order: a machine that gets busier or quieter during the run weighs on
                # the first and the last modes alike
                for mode in modes if round_ % 2 == 0 else modes[::-1]:
                    result = run_mode(mode, documents, scratch, args.skip_ocr, args.baseline)
                    runs[mode].append(result)
                    print(json.dumps({"grants": documents, **result}), flush=True)
            all_runs[documents] = runs, probes
    for documents, (runs, probes) in all_runs.items():
        report(documents, args.skip_ocr, runs)
        if probes:
            print("the same loop's CPU with both cores busy against alone, before each round: "
                  + ", ".join(f"{p['both busy / alone']:.2f}x" for p in probes)
                  + " (1.00x: a second busy core costs the work nothing; others' cores alone, both: "
                  + "; ".join("{}, {}".format(*p["others' cores"]) for p in probes) + ")")


if __name__ == "__main__":
    main()
