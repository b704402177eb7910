"""Where a Ray worker's time goes, against the same worker code in a plain local process.

    PYTHONPATH=src python benchmarks/ray_worker_profile.py [--documents 20] [--variants local-bare,ray-bare,local-build,ray-build]

One worker (``figsearch.pipeline.ray_worker._Worker``) ingests the same documents one after the
other, reads the signs of their drawings and (with the build's loads) encodes them, exactly as in a
Ray build, in four settings, each in a fresh process:

- ``local-bare``: the worker object in a plain Python process, loading only the OCR engine;
- ``ray-bare``: the same as a Ray actor (``ray.init(num_cpus=1)``), with the workers' niceness
  that ``--ray local`` gives them (``WORKER_NICENESS``: that of the driver);
- ``ray15-bare``: the same with Ray's default, workers 15 nicer than the driver;
- ``local-build`` / ``ray-build``: the worker loading what a Ray build has it load (the OCR engine,
  the drawing encoder, and the text encoder when ``--text`` says so) and encoding the drawings
  right after reading their signs;
- ``ray-build-lazy``: as ``ray-build``, but the text encoder is loaded only after the last document
  (the lazy loading of the builds before stop 17: ``_Worker.load`` once the ingest is over).

- ``start-default`` / ``start-lean`` (``--workers N``, default 2): no document; only Ray's start
  as ``--ray local`` did before stop 19 (``ray.init`` with Ray's helper processes) and as it does
  now (``connect("local")``: without the autoscaler monitor, the log monitor and the API server,
  no metrics, no task events), then ``N`` actors that import the worker's module and answer a
  call; prints the seconds to import Ray, to start it and until the actors answer, and the CPU
  seconds of every process Ray started, by name (``descendants_cpu`` of ray_build_benchmark).
  ``start-lean`` also prints when the GCS was up, the raylet started and registered (``steps``,
  seconds from the start) and the seconds from the registration until the actors answer.
- ``VARIANT*2`` (e.g. ``local-build*2``, stop 24): two copies of the variant at once, each in its own
  process, each doing the whole work: against the variant alone it shows what the same work costs when
  both of a 2-core machine's cores are busy (shared cache, memory bandwidth, the host), which is what a
  2-worker build's workers pay and a 1-worker build's worker does not; ``others' cores`` is the CPU of
  the machine's other processes during the run, per wall second (from ``/proc/stat``).
- ``calibrate``: no figsearch code: a fixed pure-Python loop that stays in the core's own cache, the
  control for ``*2`` (``calibrate*2``).
- ``start-lean-nowait``: as ``start-lean`` with Ray's ``prestart_worker_first_driver`` off:
  ``ray.init`` returns as soon as the raylet has registered instead of waiting for the worker
  processes it prestarts, and the actors' processes start when they are asked for (tried at stop
  23, not kept: docs/cluster.md).
- ``start-lean-agents`` (stop 25): as ``start-lean`` with the raylet's own dashboard agent and
  runtime-environment agent (``distributed.AGENT_STANDINS`` off: the start before stop 25), against
  ``start-lean``, whose raylet runs ``ray_agent_standin`` instead: "node registered" comes once the
  agents have written their ports, and their CPU is in "ray's processes cpu" (``ray::DashboardAgent``,
  ``ray::RuntimeEnvAgent``).

For each: the wall seconds of the whole run and of each kind of call (the worker's own accounting),
the process's CPU seconds, the CPU seconds of each of its threads by name (from /proc), what the
libraries' thread settings are inside it (``OMP_NUM_THREADS``, ``OMP_THREAD_LIMIT``, torch's intra-op
threads, the ONNX session's), and the 1-minute load average before and after. Same-run ratios
only: the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ray_build_benchmark import descendants_cpu, inputs  # noqa: E402

VARIANTS = ("local-bare", "ray15-bare", "ray-bare", "local-build", "ray-build", "ray-build-lazy")


def run_start(variant: str, workers: int) -> dict:
    """Ray's start alone (``start-default``: ``ray.init`` as before stop 19; ``start-lean``: ``connect``)."""
    import logging

    started, cpu = time.perf_counter(), time.process_time()
    import ray

    from figsearch.pipeline import distributed
    from figsearch.pipeline.distributed import WORKER_NICENESS, connect

    imported = time.perf_counter()
    steps: dict[str, float] = {}
    if variant.startswith("start-lean"):
        if variant == "start-lean-nowait":
            distributed.LOCAL_SYSTEM_CONFIG = {**distributed.LOCAL_SYSTEM_CONFIG, "prestart_worker_first_driver": False}
        distributed.AGENT_STANDINS = variant != "start-lean-agents"
        connect("local", workers=workers, mark=lambda step: steps.setdefault(step, time.perf_counter()))
    else:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
                 _system_config={"worker_niceness": WORKER_NICENESS})
    up = time.perf_counter()

    class Ping:
        def __init__(self) -> None:
            import figsearch.pipeline.ray_worker  # noqa: F401 - what a build's worker imports first

        def ping(self) -> int:
            return os.getpid()

    actors = [ray.remote(num_cpus=1)(Ping).remote() for _ in range(workers)]
    ray.get([actor.ping.remote() for actor in actors])
    ready = time.perf_counter()
    time.sleep(1.0)  # what the helpers do right after the start counts too
    processes = descendants_cpu()
    registered = steps.get("node registered")
    return {"variant": variant, "workers": workers, "import ray": round(imported - started, 2),
            "ray init": round(up - imported, 2), "until the actors answer": round(ready - started, 2),
            "steps": {step: round(t - started, 2) for step, t in steps.items()},
            "from the registration until the actors answer": round(ready - registered, 2) if registered else None,
            "driver cpu": round(time.process_time() - cpu, 2),
            "ray's processes cpu": round(sum(v for k, v in processes.items() if not k.startswith("ray::Ping")), 2),
            "actors' processes cpu": round(sum(v for k, v in processes.items() if k.startswith("ray::Ping")), 2),
            "processes": processes}


def _threads() -> dict[str, float]:
    """CPU seconds of each thread of this process, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[name] = round(out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick, 2)
    return out


def _settings() -> dict:
    found = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "MKL_NUM_THREADS",
                                                      "OPENBLAS_NUM_THREADS")}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        found["torch threads"] = torch.get_num_threads()
        found["torch interop threads"] = torch.get_num_interop_threads()
    found["threads now"] = len(list(Path("/proc/self/task").iterdir()))
    return found


def make_probe():
    from figsearch.pipeline.ray_worker import _Worker

    class Probe(_Worker):
        def report(self) -> dict:
            times = os.times()
            settings = _settings()
            for (kind, _spec), future in self._loads.items():
                if future.done() and future.exception() is None:
                    session = getattr(future.result(), "session", None)
                    if session is not None:
                        options = session.get_session_options()
                        settings[f"{kind} onnx intra-op threads"] = options.intra_op_num_threads
            return {"cpu": round(times.user + times.system, 2), "niceness": os.getpriority(os.PRIO_PROCESS, 0), "threads": _threads(), "settings": settings,
                    "calls": {k: round(v, 2) for k, v in self.seconds.items()}}

    return Probe


def run_calibrate() -> dict:
    """A fixed loop of Python arithmetic over a small list: CPU work with next to no memory traffic."""
    started, cpu = time.perf_counter(), time.process_time()
    values, total = list(range(1000)), 0
    for _ in range(40000):
        for v in values:
            total = (total + v * v) % 1000003
    return {"variant": "calibrate", "seconds": round(time.perf_counter() - started, 2),
            "cpu": round(time.process_time() - cpu, 2), "result": total}


def _machine_cpu() -> float:
    """CPU seconds the whole machine has used since boot (all cores; /proc/stat's first line)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = sum(int(f) for i, f in enumerate(fields) if i not in (3, 4))  # not idle, not iowait
    return busy / os.sysconf("SC_CLK_TCK")


def run_copies(variant: str, copies: int, extra: list[str]) -> dict:
    """``copies`` processes of ``variant`` at once; each one's result, and the CPU of the machine's other
    processes per wall second meanwhile."""
    command = [sys.executable, __file__, "--one", variant] + extra
    load, machine, started = os.getloadavg()[0], _machine_cpu(), time.perf_counter()
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(copies)]
    results = []
    for process in running:
        out, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"{variant} failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall = time.perf_counter() - started
    own = sum(r["cpu"] for r in results)  # a copy's own CPU (process times), its start not included
    others = max(0.0, _machine_cpu() - machine - own - 0.5 * copies)  # about 0.5 s each: Python's start
    return {"variant": f"{variant}*{copies}" if copies > 1 else variant, "copies": copies,
            "cpu per copy": [r["cpu"] for r in results], "seconds per copy": [r["seconds"] for r in results],
            "others' cores": round(others / wall, 2), "load": (round(load, 2), round(os.getloadavg()[0], 2)),
            "results": results}


def run_variant(variant: str, documents: int, text: bool) -> dict:
    from figsearch.ingest.plan import plan_paths
    from figsearch.pipeline.distributed import _default_ocr_engine, _encoder_specs, _payload

    units = plan_paths([Path(p) for p in inputs(documents)]).units
    engine = _default_ocr_engine()
    specs = _encoder_specs("/nonexistent", None, None)
    loads = [] if variant.endswith("bare") else [(k, v) for k, v in specs.items() if text or k != "text"]
    lazy = variant.endswith("lazy")
    if lazy:
        loads = [(k, v) for k, v in loads if k != "text"]
    visual = None if variant.endswith("bare") else specs["visual"]
    Probe = make_probe()
    started = time.perf_counter()
    if variant.startswith("ray"):
        import ray

        from figsearch.pipeline.distributed import WORKER_NICENESS

        niceness = 15 if variant.startswith("ray15") else WORKER_NICENESS
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 _system_config={"worker_niceness": niceness})
        ready = time.perf_counter()
        actor = ray.remote(num_cpus=1)(Probe).remote(engine, loads)

        def call(method, *args):
            return ray.get(getattr(actor, method).remote(*args))
    else:
        ready = time.perf_counter()
        worker = Probe(engine, loads)

        def call(method, *args):
            return getattr(worker, method)(*args)
    if variant.endswith("bare"):
        call("ready")  # the OCR engine: loaded before the clock starts
    first = time.perf_counter()  # the build's loads go on in the background while it ingests, as in a build
    figures = 0
    for unit in units:
        result, files, boxes, vectors = call("ingest", *_payload(unit), engine, visual)
        figures += len(boxes)
    if lazy:
        call("load", "text", specs["text"])
    if text and not variant.endswith("bare"):
        call("identity", "text", specs["text"])
    done = time.perf_counter()
    probe = call("report")
    return {"variant": variant, "documents": len(units), "drawings read": figures,
            "seconds": round(done - first, 2), "actor start": round(first - ready, 2),
            "ray init": round(ready - started, 2), **probe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--text", action="store_true", help="the build's loads include the text encoder")
    parser.add_argument("--workers", type=int, default=2, help="actors of the start-* variants")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_calibrate() if args.one == "calibrate" else
                         run_start(args.one, args.workers) if args.one.startswith("start-")
                         else run_variant(args.one, args.documents, args.text)))
        return
    for variant in args.variants.split(","):
        if variant == "calibrate" or "*" in variant:  # alone or several copies at once (stop 24)
            name, _, copies = variant.partition("*")
            extra = ["--documents", str(args.documents)] + (["--text"] if args.text else [])
            result = run_copies(name, int(copies or 1), extra)
            brief = {k: v for k, v in result.items() if k != "results"}
            brief["calls per copy"] = [r.get("calls") for r in result["results"]]
            print(json.dumps(brief), flush=True)
            continue
        load = os.getloadavg()[0]
        command = [sys.executable, __file__, "--one", variant, "--documents", str(args.documents),
                   "--workers", str(args.workers)]
        done = subprocess.run(command + (["--text"] if args.text else []), capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{variant} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["load"] = (round(load, 2), round(os.getloadavg()[0], 2))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
