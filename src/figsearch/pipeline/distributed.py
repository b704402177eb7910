"""The build on a Ray cluster: decoding, reading signs and embedding on the workers, writing here.

    figsearch build PATH... --collection DIR --ray [ADDRESS|auto|local]

This process (the driver) lists and plans the input, skips unchanged documents and is the only
writer of the collection. It writes through the very functions of a local build
(figsearch.ingest.runner, figsearch.pipeline.signs, figsearch.pipeline.index), which take the
workers' results in the order of the plan, so a Ray build writes what a local build writes, in
the same order, and resumes the same way after a kill: what was committed stays, a rerun does
the rest. Only the expensive middle of each stage runs on the cluster, on one pool of worker
actors (``_Worker``, one per worker CPU) started once when the build starts and kept for all its
stages. Each worker loads its OCR engine and encoders in a background thread from the start,
while it ingests, so no stage waits for processes to start and models to load; the driver waits
for every worker's encoders to load before it writes the first document, so a worker without the
model files is one error before anything is written.

- ingest: each document (unit) given to the first worker with a free place: two per worker,
  the next one waiting on the worker while it reads the current one (``INGESTS_PER_WORKER``; the
  last few only to a worker with none), the big ones first within each run of
  ``REORDER_WINDOW`` (``_by_cost``); the results are written in the plan's order, and the
  driver parses and links the signs of each document's drawings right after committing it
  (``ingest_progress``). The
  driver reads the document's files anyway (it hashes them for skip-unchanged) and sends their
  bytes; the worker unpacks them in a scratch folder, runs ``process_unit`` there, reads the signs
  of the drawings and encodes them (once its drawing encoder is loaded), and sends back the
  records, the PNG bytes of the figures, the text boxes and the vectors; the driver stores the
  files and keeps the rest for the later stages. Workers need neither the input nor
  the collection on their disks. A worker process that dies is restarted by Ray and its
  documents sent again by the driver; a document that kills every try is recorded as a failure
  of that document, as a local build records it, and costs the documents queued behind it no try.
- reference signs: what the ingest left: for the drawings not read during the ingest, the
  workers' OCR engine reads their text boxes (sent as PNG bytes); the driver parses, splits and
  links the signs of every drawing not done yet (``process_figure``).
- embedding: every worker loads both encoders; the texts of the documents linked during the
  ingest are encoded before the stage (``_TextsAhead``: by a worker with no document left to
  ingest, then, once the last document is in, by all, each piece to a worker once it is free);
  the drawings not encoded during the ingest
  and the texts not encoded ahead are cut into batches of about the same cost, a few per worker;
  the driver stores the vectors in the plan's order and builds the indexes.

Nothing here is imported by a local build: ``import ray`` happens only in this module.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import importlib.util
import itertools
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from figsearch.embed.catalog import encoder_key
from figsearch.embed.sheet_context import context_digest, mix, sheet_context_of
from figsearch.errors import CollectionError, FigsearchError, InputError, MissingDependency, ModelUnavailable
from figsearch.fsutil import atomic_write_bytes, fsync_directories
from figsearch.index.settings import NO_TEXT
from figsearch.index.shards import ShardExecutor
from figsearch.ingest.base import Unit
from figsearch.ingest.process import UnitResult
from figsearch.ingest.runner import CommittedForwarder
from figsearch.link.text import figure_text
from figsearch.pipeline import ray_worker
from figsearch.pipeline.embed import EmbedReport, text_row, texts_to_encode
from figsearch.pipeline.ray_shards import shards_on_ray
from figsearch.pipeline.ray_worker import _Worker
from figsearch.records import Failure, Figure, FigureRole
from figsearch.store import TMP_DIR, Collection

log = logging.getLogger(__name__)

#: how often Ray runs a task again whose worker process died (a kill, an OOM kill, a native crash)
MAX_RETRIES = 3
#: calls in flight per worker: enough to keep every worker busy while the driver writes
IN_FLIGHT_PER_WORKER = 2
#: documents in flight per worker in the ingest: the next one waits on the worker, its bytes there,
#: while it works on the current one, so that it does not idle between two documents while its
#: result goes to the driver and the next document comes (the last ``2 * workers`` documents go
#: only to a worker with nothing in flight; a worker that dies with two costs neither a try:
#: ``_Pool.map``'s ``tries``)
INGESTS_PER_WORKER = 2
#: drawings whose signs the workers read while ingesting (the driver keeps their text boxes until
#: the signs stage); beyond it, the signs stage reads them
PREFETCH_LIMIT = 20_000
#: drawings in flight per worker in the signs stage: the driver's parsing and linking of one
#: drawing then overlaps the reading of the next ones
READS_PER_WORKER = 3
#: drawings the workers encode right after decoding them (the driver keeps their vectors until the
#: embedding stage); beyond it, the embedding stage encodes them
VECTORS_LIMIT = 100_000
#: the ingest sends the big documents first within each run of this many (in the plan's order)
REORDER_WINDOW = 64
#: a document is big (sent first) when it holds more than 1/BIG_SHARE of a worker's share of its
#: window's files or bytes (``_by_cost``)
BIG_SHARE = 8
#: the embedding stage cuts its work into about this many batches per worker, so that a worker that
#: is done early takes another batch instead of waiting for the slowest one
BATCHES_PER_WORKER = 3
#: a text's cost in characters on top of its length (the encoder's work per text, however short)
TEXT_COST = 24
#: texts (sentences, drawing words) of committed documents that the workers encode before the
#: embedding stage (the driver keeps their vectors until then); beyond it, the embedding stage does
TEXTS_LIMIT = 200_000
#: texts per call when a worker with no document left to ingest encodes texts at the ingest's end
SPARE_TEXTS = 128
#: encoders that only the first worker loads from the start, the others once the ingest is over.
#: None since minilm runs through onnxruntime: loading it takes a worker 0.3 to 0.5 CPU s (it was
#: 7 to 8 CPU s of importing torch and sentence-transformers), so every worker loads it from the
#: start and is ready when the embedding stage begins
LATER: tuple[str, ...] = ()
#: how much nicer than the driver the workers of a Ray instance started here run (Ray's default: 15)
WORKER_NICENESS = 0
#: Ray's settings for an instance started here (``--ray local``) beside ``worker_niceness``: no
#: metrics collection (``RAY_enable_metrics_collection``) and no task events for Ray's state API
#: and dashboard (``RAY_task_events_report_interval_ms=0``): Ray's own observability, which
#: nothing reads on an instance that lives as long as one build; and the worker's module imported
#: by the worker processes that the raylet prestarts, as soon as they have registered
#: (``preload_python_modules``), instead of when the actor is created: the import (0.4 to 1 s on the
#: development machine) then runs while the driver finishes ``ray.init`` and asks for the actors
#: (in start-only runs 2 actors answered 0.1 to 1 s sooner, 1 actor under 0.2 s later: docs/cluster.md,
#: "Stop 21")
#: And the wait between two tries to connect to a local socket (``raylet_client_connect_timeout_milliseconds``,
#: Ray's default 1000 ms, 10 tries): the raylet connects to the object store it has just started in a thread of
#: its own, and when the store's socket is not there yet at the first try, it waited a whole second: 11 of 47
#: instances started on the development machine lost exactly 1.0 s there (docs/cluster.md, "Stop 30"). Tries
#: every 20 ms, 500 of them: the same 10 s before Ray gives up.
LOCAL_SYSTEM_CONFIG = {"enable_metrics_collection": False, "task_events_report_interval_ms": 0,
                       "preload_python_modules": [ray_worker.__name__],
                       "raylet_client_connect_timeout_milliseconds": 20, "raylet_client_num_connect_attempts": 500}
#: whether an instance started here (``--ray local``) runs ``ray_agent_standin`` instead of the
#: raylet's dashboard agent and runtime-environment agent (``_with_agent_standins``): nothing of a
#: build asks either, and each imports Ray, on the node's cores, before the node can register
#: (docs/cluster.md, "Stop 25")
AGENT_STANDINS = True
#: whether the driver ingests documents itself while Ray starts (``--ray local``: ``_DriverIngest``).
#: Off: on the development machine (2 cores) 20-document builds with 1 worker were 2 to 15 % faster
#: with it, those with 2 workers 5 to 12 % slower (Ray's start later: the driver's thread takes CPU
#: from Ray's processes), which takes Ray 2 vs 1 further from its target (docs/cluster.md, "Stop
#: 20"; benchmarks/ray_build_benchmark.py's ``rayown`` modes)
DRIVER_INGEST = False
#: how much nicer than the driver's other threads the thread of its own ingest runs (Linux): Ray's
#: processes starting meanwhile (its agents, the workers' processes) come first, the ingest takes
#: what they leave, and still a share of the CPU once the workers run (about a quarter against one)
DRIVER_INGEST_NICENESS = 5
#: the file, in the collection, naming the document the driver is ingesting itself and those it was
#: ingesting when a build stopped (a decoder that crashed the driver, say): it leaves those to the
#: workers from then on. There only during the driver's own ingest, or after such a stop.
DRIVER_INGEST_FILE = ".ray-driver-ingest.json"
#: the message of a document whose every try killed its worker (the local build's words)
CRASHED = "reading it crashed the decoder (the worker process died); the file is probably damaged or hostile"


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependency("--ray needs Ray: pip install 'figsearch[ray]'") from None
    return ray


def _require_ray() -> None:
    """MissingDependency when Ray is not installed (without importing it: that takes seconds)."""
    if importlib.util.find_spec("ray") is None:
        raise MissingDependency("--ray needs Ray: pip install 'figsearch[ray]'")


def _ray_running() -> bool:
    """Whether this process has already joined or started a Ray instance."""
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


class _QuietSigterm(logging.Filter):
    """Ray's warning that it set no SIGTERM handler, when started in a thread (``_keep_sigterm_handler`` did)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _keep_sigterm_handler() -> None:
    """Do in the main thread what ``ray.init`` does there and not in the thread that starts Ray:
    a SIGTERM ends the driver through ``sys.exit``, so that Ray's own exit handler stops the
    instance it started."""

    ray_logger = logging.getLogger("ray._private.worker")
    if not any(isinstance(f, _QuietSigterm) for f in ray_logger.filters):
        ray_logger.addFilter(_QuietSigterm())
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(signum))


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``host:port`` or ``ray://host:port`` address; None for names Ray resolves itself."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rpartition(":")
    if not host:
        return (rest, 6379) if rest else None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise InputError(f"--ray {address!r}: expected HOST:PORT, 'auto' or 'local'") from None


def connect(address: str | None = "auto", *, workers: int | None = None, mark=None) -> int:
    """Join the Ray cluster at ``address`` ('auto': the one this machine belongs to; 'local': start
    one here with ``workers`` CPUs); returns the number of worker CPUs. Already joined: kept as is.
    ``mark(step)``: told the steps of starting an instance here ("gcs up", "raylet started", "node
    registered": ``_lean_local_instance``), for the benchmark's timeline of Ray's start.

    An address that does not answer raises one InputError, before any work is done.
    """
    ray = _ray()
    if not ray.is_initialized():
        # no dashboard, no copying of the workers' logs to this process, no runtime environment
        options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
        if address in (None, "local"):
            # Ray makes its workers 15 nicer than the process that starts it (``worker_niceness``),
            # so that they yield the CPU to everything else: to the driver, to Ray's own processes,
            # to whatever else runs on the machine. A local build's processes run at its niceness;
            # the workers here do the same, or they read signs at the speed of what others leave.
            with _lean_local_instance(mark):
                ray.init(num_cpus=workers, _system_config={"worker_niceness": WORKER_NICENESS, **LOCAL_SYSTEM_CONFIG},
                         **options)
        else:
            where = None if address == "auto" else _host_port(address)
            if where is not None:
                try:
                    socket.create_connection(where, timeout=5).close()
                except OSError as exc:
                    raise InputError(f"Ray cluster at {address} does not answer ({exc.strerror or exc}); "
                                     "start one with 'ray start --head', or build with --ray local") from None
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                # Ray (2.60) joins a cluster that uses its token authentication, the default of
                # 'ray start', only with RAY_AUTH_MODE=token set here: the error does not say so
                hint = ("; if the cluster uses Ray's token authentication (the default of 'ray start' in recent "
                        "Ray), set RAY_AUTH_MODE=token (and the cluster's token, see Ray's token-auth documentation)"
                        if isinstance(exc, ConnectionError) and "RAY_AUTH_MODE" not in os.environ else "")
                raise InputError(f"cannot join the Ray cluster at {address}: {exc}{hint}") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(cpus, workers) if workers else cpus)


@contextlib.contextmanager
def _lean_local_instance(mark=None):
    """``ray.init`` starting a Ray instance here without the helper processes that an instance
    living for one build does not use: the autoscaler's monitor (``ray start --no-monitor``: this
    instance has its CPUs fixed), the log monitor (``ray start --include-log-monitor=False``: it
    copies the workers' logs to drivers, and this one asks for none, ``log_to_driver=False``) and
    the API server that ``include_dashboard=False`` still starts (the state and job APIs: nothing
    here asks them). Each of them is a Python process that imports Ray: 0.6 to 1.1 CPU s each to
    start, taken on a small machine from the build's own start, and the log monitor reads the
    logs all the build long. ``ray.init`` has no arguments for them (they are fields of Ray's
    internal ``RayParams``), so they are set on the node it creates, for this call only; with a
    Ray whose internals differ, the instance starts with them, as before. And ``ray.init`` waits
    for the new node's raylet to register less long (``_get_node_once_registered``). The raylet's
    two agents are replaced by ``ray_agent_standin`` (``_with_agent_standins``, with
    ``AGENT_STANDINS``). ``mark(step)`` is told when the GCS is up ("gcs up"), when the raylet has
    been started ("raylet started") and when it has registered ("node registered")."""
    try:
        from ray._private import node as ray_node
        from ray._private import services as ray_services

        init, api = ray_node.Node.__init__, ray_node.Node.start_api_server
        heads, processes = ray_node.Node.start_head_processes, ray_node.Node.start_ray_processes
        get_node, start_process = ray_services.get_node, ray_services.start_ray_process
    except (ImportError, AttributeError):  # another Ray: its defaults
        yield
        return

    def lean_init(node, ray_params, *args, **kwargs):
        if hasattr(ray_params, "no_monitor") and hasattr(ray_params, "include_log_monitor"):
            ray_params.no_monitor, ray_params.include_log_monitor = True, False
        init(node, ray_params, *args, **kwargs)

    ray_node.Node.__init__ = lean_init
    ray_node.Node.start_api_server = lambda node, **_: None
    # when the GCS is up and when the raylet has been started (it registers once its agents are up)
    ray_node.Node.start_head_processes = _marked(heads, mark, "gcs up")
    ray_node.Node.start_ray_processes = _marked(processes, mark, "raylet started")
    ray_services.get_node = _get_node_once_registered(get_node, mark)
    if AGENT_STANDINS:
        ray_services.start_ray_process = _starting_raylet_with_agent_standins(start_process)
    try:
        yield
    finally:
        ray_node.Node.__init__, ray_node.Node.start_api_server = init, api
        ray_node.Node.start_head_processes, ray_node.Node.start_ray_processes = heads, processes
        ray_services.get_node, ray_services.start_ray_process = get_node, start_process


#: the raylet's command-line options that hold its agents' command lines (Ray 2.60), and which
#: stand-in each gets (``ray_agent_standin``'s first argument)
AGENT_OPTIONS = {"--dashboard_agent_command=": "dashboard", "--runtime_env_agent_command=": "runtime_env"}


def _with_agent_standins(command: list[str]) -> list[str]:
    """The raylet's ``command`` with its two agents' command lines replaced by ``ray_agent_standin``
    with the same options (it needs the node id and the session folder): the stand-ins write the
    ports the raylet waits for before it registers its node, in a few hundredths of a second, where
    each agent imports Ray first (0.6 to 0.7 CPU s each, nearly all of what it spends over a build;
    the node registered 0.7 to 0.85 s after the raylet started on the idle development machine, 1.4
    to 2.9 s when it was loaded; with the stand-ins 0.1 to 0.2 s). An option whose command does not
    name Ray's agent script (another Ray) is left as it is."""
    import shlex
    import subprocess

    script = str(Path(__file__).with_name("ray_agent_standin.py"))
    out = []
    for argument in command:
        for option, role in AGENT_OPTIONS.items():
            if argument.startswith(option):
                words = shlex.split(argument[len(option):])
                if any(w.endswith(("agent.py", "main.py")) for w in words):
                    options = [w for w in words if w.startswith("--")]
                    argument = option + subprocess.list2cmdline([sys.executable, "-S", script, role, *options])
        out.append(argument)
    return out


def _starting_raylet_with_agent_standins(start_ray_process):
    """Ray's ``services.start_ray_process``, which starts the raylet with ``_with_agent_standins``."""

    def start(command, process_type, *args, **kwargs):
        if process_type == "raylet":
            command = _with_agent_standins(list(command))
        return start_ray_process(command, process_type, *args, **kwargs)

    return start


def _marked(method, mark, step: str):
    """``method`` followed by ``mark(step)`` (none without ``mark``): a step of Ray's start, for the
    benchmark's timeline."""

    def marked(*args, **kwargs):
        result = method(*args, **kwargs)
        if mark is not None:
            mark(step)
        return result

    return marked


#: how often ``_get_node_once_registered`` asks whether the new raylet has registered
REGISTRATION_POLL_S = 0.02


def _get_node_once_registered(get_node, mark=None):
    """Ray's ``services.get_node(gcs_address, node_id)``, which ``ray.init`` calls to wait for the
    raylet it has just started, asked only once the GCS lists that node. Ray's own call answers on
    whole seconds only when the node has not registered yet (on the development machine it took
    1.0 or 2.0 s, and after the raylet had registered 0.003 s), while the raylet registers 0.5 to
    1 s after it starts: so the start waited up to a second, sometimes two, for nothing (in
    start-only runs ``ray.init`` took 1.76-1.85 s with Ray's wait, 1.47-1.50 s with this one).
    Asking the GCS's node list every ``REGISTRATION_POLL_S`` costs next to nothing; with a Ray
    whose client differs, Ray's own wait. ``mark("node registered")`` once the GCS lists the node:
    the rest of ``ray.init`` is mostly Ray's wait for the worker processes it starts then, one per
    CPU, to import Ray and register (Ray's ``prestart_worker_first_driver``)."""

    def get_node_once_registered(gcs_address, node_id):
        try:
            from ray._raylet import GcsClient

            client = GcsClient(address=gcs_address)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if any(info.node_id.hex() == node_id for info in client.get_all_node_info(timeout=2).values()):
                    if mark is not None:
                        mark("node registered")
                    break
                time.sleep(REGISTRATION_POLL_S)
        except Exception as exc:  # noqa: BLE001 - another Ray's client: Ray's own wait below
            log.debug("waiting for the raylet as Ray does: %s", exc)
        return get_node(gcs_address, node_id)

    return get_node_once_registered


class RayCluster:
    """What ``figsearch.pipeline.building.build(cluster=...)`` runs on Ray: one per build.

    Its worker actors (``_Worker``, one per worker CPU) are started once, when the build starts
    (``start``) or at the first stage that needs them, and serve every stage: they ingest
    documents, read signs, encode the drawings they decoded and, in the embedding stage, the
    sentences; they load their OCR engine and encoders in the background from the start, while
    they ingest. They are let go after the build's last stage (``close``).

    ``address="local"`` starts the Ray instance in a background thread: the driver lists, plans
    and hashes the input meanwhile, and waits for Ray only when it sends the first document.
    """

    def __init__(self, address: str | None = "auto", *, workers: int | None = None) -> None:
        self._requested = workers
        self._ray_module = None
        self._pool: _Pool | None = None
        self._pool_started: Future | None = None  # the pool being started in the background
        self._starter: _Starter | None = None
        self._engine: str | None = None  # the OCR engine the workers load (None: none)
        self._specs: dict[str, str] = {}  # modality -> encoder spec the workers load
        self._last: str | None = None  # the build's last stage: the workers go after it
        #: figure id -> (image path, text boxes): the signs of drawings read by the workers right
        #: after ingesting them, for the signs stage (``_RayReadAhead``) to take instead of reading them again
        self._prefetched: dict[str, tuple] = {}
        #: figure id -> (encoder spec, image digest, vector): drawings the workers encoded right after
        #: decoding them, for the embedding stage to store instead of encoding them again
        self._vectors: dict[str, tuple[str, str, np.ndarray]] = {}
        #: figures cut from sheets by the signs stage whose vectors the workers computed then
        self._cut_encoded: set[str] = set()
        #: (figures cut from a sheet, encoder spec, ref of their vectors) sent to the workers, not collected yet
        self._cutting: list[tuple[list[Figure], str, object]] = []
        self._cut_turn = 0
        #: what the driver did of the signs stage while the ingest ran (``ingest_progress``), and the
        #: OCR engine it writes the signs under (None: not created yet; False: it cannot run here)
        self._early_signs = None
        self._early_engine = None
        #: (modality, spec) -> the identity the workers' encoder reported (all must report the same)
        self._identities: dict[tuple[str, str], dict] = {}
        #: seconds spent in each part on the driver (for the benchmark and the logs)
        self.timings: dict[str, float] = collections.defaultdict(float)
        #: drawings whose signs were read "while ingesting" and "in the signs stage", and of the first
        #: those the driver parsed, linked and wrote "linked while ingesting" (``ingest_progress``)
        self.reads: dict[str, int] = collections.Counter()
        #: drawings encoded "while ingesting", "cut from sheets" (the figures the driver cut from a
        #: sheet, encoded as soon as they were cut) and "in the embedding stage"
        self.encoded: dict[str, int] = collections.Counter()
        #: distinct texts (sentences, drawing words) encoded "before the embedding stage" (those of
        #: documents committed and linked during the ingest, ``_TextsAhead``) and "in the embedding
        #: stage"; of the first, those "given to a free worker during the ingest" (``spare``)
        self.texts: dict[str, int] = collections.Counter()
        #: cut figures the driver stored mixed with the vector a worker made of their sheet while
        #: ingesting (a sheet context, ``_mixed_with_sheets``); ``mix_sheet_context`` mixes the others
        self.mixed_as_stored = 0
        self._ahead = _TextsAhead()
        #: what the driver ingested itself while Ray started (``_DriverIngest``): "documents", their
        #: "drawings read" and the "seconds" it spent on them
        self.own_ingest: dict[str, float] = collections.Counter()
        self._ingest_left = 0  # ingest results not given back yet
        #: each worker's seconds loading models and in each kind of call, kept when they are let go
        self.worker_timings: list[dict[str, float]] = []
        #: each worker's (start, [(call, wall start, wall end)]) and the driver's own such events,
        #: for the benchmark's timeline
        self.worker_timelines: list = []
        self.events: list[tuple[str, float, float]] = []
        #: wall times of the build's first steps on Ray (``_mark``): "start" (this object made), "ray
        #: imported", for an instance started here "gcs up", "raylet started" and "node registered" (its
        #: raylet registered with the GCS once its two agents were up; from then on ``ray.init`` waits
        #: for the worker processes it prestarts to register), "ray up" (joined or
        #: started), "workers created" (the actors asked for), "first document sent", "first result
        #: arrived" (the first the sending thread takes, in the sending order): the timeline of Ray's
        #: start, for the benchmark
        self.marks: dict[str, float] = {}
        self._imported = threading.Event()  # set once Ray is imported (``_DriverIngest`` waits for it)
        self._mark("start")
        self._local = address in (None, "local")
        if address in (None, "local") and not _ray_running():
            _require_ray()  # a missing Ray is said now, before any work
            _keep_sigterm_handler()
            self._starter = _Starter.get()
            self._connected: Future | None = self._starter.submit(self._connect, address, workers)
        else:
            self._connected = None
            self._connect(address, workers)

    def _mark(self, step: str) -> None:
        self.marks.setdefault(step, time.time())

    def _connect(self, address, workers) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        self._ray_module = _ray()
        self._mark("ray imported")
        self._imported.set()
        self._workers = connect(address, workers=workers, mark=self._mark)
        self._mark("ray up")
        self.timings["ray start (background)" if self._starter else "ray start"] += time.perf_counter() - started
        self.timings["ray start, this thread's CPU"] += time.thread_time() - cpu

    def _wait_connected(self) -> None:
        connected, self._connected = self._connected, None
        if connected is not None:
            started, wall = time.perf_counter(), time.time()
            connected.result()
            self.timings["wait for ray start"] += time.perf_counter() - started
            self.events.append(("wait", wall, time.time()))

    @property
    def ray(self):
        self._wait_connected()
        return self._ray_module

    @property
    def workers(self) -> int:
        """The number of worker actors (the cluster's CPUs, at most ``workers``); waits for Ray to start."""
        self._wait_connected()
        return self._workers

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Let the worker actors go (their CPUs return to the cluster)."""
        if self._pool_started is not None or self._connected is not None:
            try:
                self._start_pool() if self._pool_started is not None else self._wait_connected()
            except Exception:  # noqa: BLE001 - closing: the build reports the error it met
                pass
        if self._pool is not None:
            self.worker_timings = self._pool.stats()
            self.worker_timelines = self._pool.timelines()
            log.info("Ray workers' seconds: %s; driver's waits: %s", self.worker_timings, dict(self.timings))
            self._pool.close()
            self._pool = None

    # -- the build's hook ------------------------------------------------------------------------

    def start(self, root: str, *, ocr_engine: str | None = None, skip_ocr: bool = False, index: bool = True,
              visual_model: str | None = None, text_model: str | None = None) -> None:
        """Called by ``build`` before any work: start the workers (in the background while Ray
        starts), which load the OCR engine and the encoders this build will use while they ingest.
        A worker that cannot load an encoder stops the build with that error before the first
        document is written (``_Pool.check``)."""
        self._engine = None if skip_ocr else (ocr_engine or _default_ocr_engine())
        self._specs = _encoder_specs(root, visual_model, text_model) if index else {}
        self._last = "index" if index else ("ingest" if skip_ocr else "signs")
        self._prefetched, self._vectors, self._identities, self._cut_encoded = {}, {}, {}, set()
        self._cutting, self._early_signs, self._early_engine = [], None, None
        self._ahead = _TextsAhead(self._specs.get("text"))
        if self._pool is None and self._starter is not None and self._pool_started is None:
            self._pool_started = self._starter.submit(self._make_pool)
        else:
            self._start_pool()

    def _make_pool(self) -> _Pool:
        started = time.perf_counter()
        # the first worker loads every encoder from the start (so that missing model files stop the
        # build before anything is written); the others too, except those in ``LATER``, which
        # they load once their ingest is over (``_load_later``; none now)
        loads = {n: [(m, s) for m, s in self._specs.items() if m not in LATER or n == 0]
                 for n in range(self.workers)}
        pool = _Pool(self, self._engine, loads, self._encoder_threads())
        self._mark("workers created")
        self.timings["start workers"] += time.perf_counter() - started
        return pool

    def _encoder_threads(self) -> int:
        """The encoders' threads on each worker (``encoder_threads``)."""
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return encoder_threads(self._local, self.workers, cpus)

    def _start_pool(self) -> _Pool:
        if self._pool is None:
            starting, self._pool_started = self._pool_started, None
            if starting is not None:
                started, wall = time.perf_counter(), time.time()
                try:
                    self._pool = starting.result()
                finally:
                    self.timings["wait for ray start"] += time.perf_counter() - started
                    self.events.append(("wait", wall, time.time()))
            else:
                self._pool = self._make_pool()
        return self._pool

    def _load_later(self) -> None:
        """Have every worker load the encoders left for later (``LATER``): once the ingest is over."""
        if self._pool is not None:
            for modality in LATER:
                if modality in self._specs:
                    self._pool.load(modality, self._specs[modality], list(range(len(self._pool.actors))))

    def _done(self, stage: str) -> None:
        if self._last == stage:
            self.close()

    # -- ingest ----------------------------------------------------------------------------------

    def run_units(self, units: list[Unit], root: str, jobs: int) -> Iterator[UnitResult]:
        """``figsearch.ingest.workers.run_units`` on Ray: each unit's result, in the order given.

        Two documents in flight per worker (``INGESTS_PER_WORKER``): the next one waits on the
        worker while it reads the current one; a worker that dies with both costs neither a try,
        they are sent again one at a time, so a document that kills every try is that document's
        failure, and no other's (``_Pool.map``'s ``tries``). A thread of this process sends the documents (reading
        their files) and collects the results, so that the workers are kept busy while this
        thread stores files and commits. Within each run of ``REORDER_WINDOW`` documents the
        big ones are sent first (``_by_cost``), so that no worker is left alone with a big one at
        the end; the results are given back in the order of the plan. Until every worker has loaded its
        encoders nothing is given back (so nothing is written), but the workers go on ingesting."""
        if not units:
            self._load_later()
            self._done("ingest")
            return
        starting = self._pool_started
        starting = starting if starting is not None and not starting.done() else None
        # the workers Ray will have: known once it is up; while it starts, those asked for
        workers = self.workers if starting is None else (self._requested or _cpus())
        order = _by_cost(units, REORDER_WINDOW, workers)
        self._ingest_left = len(units)
        window = max(16, workers * IN_FLIGHT_PER_WORKER * 2)
        arrived: queue.Queue = queue.Queue()
        # results collected but not yet given back: enough for those that overtake the next one
        room = threading.Semaphore(REORDER_WINDOW + window)
        stop = threading.Event()
        own = None
        if starting is not None and DRIVER_INGEST:
            # while Ray starts, this process would only wait: it ingests documents itself meanwhile
            own = _DriverIngest(self, units, order, root, starting, arrived, room, stop)
        if starting is not None and self._engine is not None and self._last != "ingest":
            # while Ray starts (the driver would only wait): the OCR engine the driver writes the
            # signs under, which it would otherwise create at its first commit, beside the workers
            self._driver_engine()
        pool = self._start_pool()
        ray = self.ray
        visual = self._specs.get("visual")

        def calls():
            for index in order:
                if stop.is_set():
                    return
                if own is not None and not own.claim(index):
                    continue  # ingested by the driver itself
                unit = units[index]
                engine = self._engine if len(self._prefetched) < PREFETCH_LIMIT else None
                encode = visual if len(self._vectors) < VECTORS_LIMIT else None
                payload = _payload(unit)
                self._mark("first document sent")
                yield index, ("ingest", (*payload, engine, encode))
            # every document is sent: each worker loads the rest once it has ingested its last one
            self._load_later()

        def spare(n: int):
            """A call for worker ``n``, which has no document left to ingest: texts to encode."""
            texts = self._ahead.take(SPARE_TEXTS)
            self.texts["given to a free worker during the ingest"] += len(texts)
            return self._ahead.send(pool, n, texts)

        def collect() -> None:
            try:
                for index, ref in pool.map(calls(), per_worker=INGESTS_PER_WORKER, window=window, spare=spare,
                                           tries=MAX_RETRIES + 1, total=len(order)):
                    unit = units[index]
                    try:
                        outcome = ray.get(ref)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                            ray.exceptions.OutOfMemoryError):
                        if stop.is_set():  # the build stopped and let its workers go
                            return
                        log.warning("%s: its worker died on every one of %d tries", unit.source, MAX_RETRIES + 1)
                        outcome = UnitResult(unit, fatal=Failure(unit.source, CRASHED)), {}, {}, {}
                    except ray.exceptions.RayTaskError as exc:
                        arrived.put(_cause(exc))
                        return
                    while not room.acquire(timeout=1):
                        if stop.is_set():
                            return
                    now = time.time()
                    self._mark("first result arrived")
                    self.events.append(("arrived", now, now))
                    arrived.put((index, outcome))
            except BaseException as exc:  # noqa: BLE001 - raised by the writer, in its thread
                arrived.put(exc)
            finally:
                arrived.put(None)

        collector = threading.Thread(target=collect, name="figsearch-ray-ingest", daemon=True)
        collector.start()
        producers = 1 if own is None else 2  # each puts None in ``arrived`` when it is done
        done: dict[int, tuple] = {}
        following = 0  # the next unit (in the plan's order) to give back
        checked = False
        try:
            while True:
                waiting = time.time()
                try:
                    item = arrived.get(timeout=None if checked else 0.5)
                except queue.Empty:  # (the encoders may be loaded by now)
                    item = ()
                self.events.append(("wait", waiting, time.time()))
                if item is None:
                    producers -= 1
                    if producers == 0:
                        break
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item:
                    index, outcome = item
                    done[index] = outcome
                if not checked:  # nothing is written before every worker could load the encoders
                    checked = pool.check(wait=False)
                while checked and following in done:
                    room.release()
                    yield self._take(root, units[following], done.pop(following))
                    following += 1
            if not checked:
                pool.check()
            while following < len(units):
                room.release()
                yield self._take(root, units[following], done.pop(following))
                following += 1
        finally:
            stop.set()
        self._done("ingest")

    def _take(self, root: str, unit: Unit, outcome: tuple) -> UnitResult:
        result, files, boxes, vectors = outcome
        self._ingest_left -= 1
        _store_files(Path(root), files)
        self._prefetched.update(boxes)
        self._vectors.update(vectors)
        result.unit = unit
        return result

    def ingest_progress(self, collection: Collection, inner=None):
        """The ingest's progress for ``ingest_paths`` (a hook of ``build``): as soon as a document is
        committed, the driver parses, links and commits the signs of its drawings that the worker
        read (``_signs_while_ingesting``), while the workers ingest the next documents, instead of
        after the ingest, when they would wait for it. ``inner``: the caller's progress."""
        if self._engine is None or self._last == "ingest":
            return inner
        return _SignsWhileIngesting(self, collection, inner)

    def signs_done(self, report):
        """The signs stage's report with what was done while ingesting added (a hook of ``build``)."""
        early, self._early_signs = self._early_signs, None
        if early is None or report is None:
            return report
        for field in dataclasses.fields(report):  # every count (figures, signs, links, words...) and the notes
            mine, theirs = getattr(early, field.name), getattr(report, field.name)
            if isinstance(mine, dict):
                setattr(report, field.name, {**mine, **theirs})
            else:
                setattr(report, field.name, mine + theirs)
        return report

    def _signs_while_ingesting(self, collection: Collection, numbers: Iterable[str]) -> None:
        """``spot_and_link``'s work for the drawings of ``numbers`` (patents just committed) that a
        worker read while ingesting: the same ``process_figure`` calls, one transaction per figure,
        so a rerun after a kill finds them done; the signs stage does what is left (the drawings
        not read ahead, the figures that are not drawings, the patents whose text changed)."""
        from figsearch.pipeline import signs as signs_stage

        if self._driver_engine() is False:
            return
        if self._early_signs is None:
            self._early_signs = signs_stage.SpotLinkReport()
        report, spec = self._early_signs, self._specs.get("visual")
        spec = spec if spec and len(self._vectors) < VECTORS_LIMIT else None
        for number in numbers:
            figures = [collection.figure(i) for i in collection.signs.pending(number)]
            figures = [f for f in figures if f.role == FigureRole.DRAWING and f.figure_id in self._prefetched
                       and self._prefetched[f.figure_id][0] == f.image_path]
            if not figures:
                continue
            text = signs_stage._ensure_text(collection, number, {}, report)
            for figure in figures:
                _, boxes, *ahead = self._prefetched.pop(figure.figure_id)
                children = signs_stage.process_figure(collection, figure, self._early_engine, text, report, boxes,
                                                      ahead=ahead[0] if ahead else None)
                self.reads["while ingesting"] += 1
                self.reads["linked while ingesting"] += 1
                if children and spec is not None:
                    self._encode_cut(collection, children, spec)
            if self._ahead.spec is not None:
                # what the embedding stage will encode of this patent's drawings (their sentences
                # and words, as ``plan_text`` reads them), for the workers to encode before it
                self._ahead.add(s for f in collection.figures(patent=number, roles=(FigureRole.DRAWING,))
                                for s in texts_to_encode(figure_text(collection, f)))

    def _flush_texts(self) -> None:
        """Send the workers every text of ``_TextsAhead`` not sent yet (none: nothing is done)."""
        if self._pool is not None:
            self._ahead.flush(self._pool)

    def _driver_engine(self):
        """The OCR engine the driver writes the signs under during the ingest (created once; it never
        reads: the workers do), or False when it cannot run here (the signs stage then says why)."""
        if self._early_engine is None:
            started = time.perf_counter()
            try:  # what spot_and_link does first: an engine that cannot run here leaves the signs out
                from figsearch.ocr import create_engine

                engine = create_engine(self._engine)
                self._early_engine = engine if engine.name == self._engine else False
            except FigsearchError as exc:
                log.info("signs left to the signs stage: %s", exc)
                self._early_engine = False
            self.timings["driver's OCR engine"] += time.perf_counter() - started
        return self._early_engine

    def _encode_cut(self, collection: Collection, children: list[tuple[Figure, list]], spec: str) -> None:
        """Have a worker encode the figures just cut from a sheet (``process_figure``'s children),
        from their stored PNG bytes, as the embedding stage would (``_collect_cut`` keeps the vectors)."""
        figures, blobs = [], []
        for child, _ in children:
            if child.image_path and child.image_sha256:
                try:
                    blobs.append(collection.path(child.image_path).read_bytes())
                except OSError:
                    continue  # the embedding stage finds it unreadable and says why
                figures.append(child)
        if figures and self._pool is not None:
            workers = self._pool.loaded("visual", spec)
            actor = self._pool.actors[workers[self._cut_turn % len(workers)]]
            self._cut_turn += 1
            self._cutting.append((figures, spec, actor.images.remote(spec, blobs)))

    def _collect_cut(self) -> None:
        """Keep the vectors of the cut figures for the embedding stage (those not encoded: it encodes them)."""
        cutting, self._cutting = self._cutting, []
        for figures, spec, ref in cutting:
            try:
                vectors, errors = self._pool.get(ref)
            except Exception as exc:  # noqa: BLE001 - a worker that died: the embedding stage encodes them
                log.warning("figures cut from sheets not encoded before the embedding stage: %s", exc)
                continue
            encoded = iter(() if vectors is None else vectors)
            for index, figure in enumerate(figures):
                if index not in errors:
                    self._vectors[figure.figure_id] = (spec, figure.image_sha256, next(encoded))
                    self._cut_encoded.add(figure.figure_id)

    # -- reference signs -------------------------------------------------------------------------

    def read_ahead(self, collection: Collection, drawings: list[Figure], engine, jobs: int,
                   numerals: dict[str, bool] | None = None) -> _RayReadAhead:
        """``figsearch.pipeline.signs._ReadAhead`` on Ray (``jobs`` is the local build's; the cluster's CPUs
        count here). ``numerals``: patent number -> ``signs.numerals_wanted`` of its text (absent: True)."""
        pool = self._start_pool()
        pool.check()
        self._flush_texts()  # (the last document's commit did, unless the ingest stopped short)
        prefetched, self._prefetched = self._prefetched, {}
        if engine is None or engine.name != self._engine:
            prefetched = {}
        return _RayReadAhead(self, pool, collection, drawings, engine, prefetched, numerals or {})

    # -- embedding -------------------------------------------------------------------------------

    @property
    def embedder(self) -> RayCluster:
        return self

    @property
    def index_shards(self) -> ShardExecutor:
        """Where an index big enough to be sharded (``figsearch.index.shards``) adds its vectors: Ray
        tasks of one CPU each, ``workers`` at a time, once the worker actors are let go (the embedding
        is over by then, and their CPUs are what the tasks run on; ``figsearch.pipeline.ray_shards``)."""
        def map_shards(fn, tasks):  # fn is shards.encode_shard: the tasks run its in-memory twin
            self.close()
            return shards_on_ray(self.ray, tasks, in_flight=self.workers, retries=MAX_RETRIES)

        return ShardExecutor(self.workers, map_shards)

    def encoder(self, modality: str, spec: str) -> _RemoteEncoder:
        """The identity of the workers' encoders for ``modality``; they must all be the same encoder."""
        pool = self._start_pool()
        pool.check()
        self._flush_texts()
        if self._specs.get(modality) != spec:  # not foreseen at the start (the collection's languages changed)
            self._specs[modality] = spec
        started = time.perf_counter()
        pool.load(modality, spec, list(range(self.workers)))  # those that do not load it yet start now
        identity = self._usable(pool, modality, spec)[1]
        self.timings[f"wait for {modality} encoders"] += time.perf_counter() - started
        return _RemoteEncoder(identity)

    def _usable(self, pool: _Pool, modality: str, spec: str) -> tuple[list[int], dict]:
        """The workers that have loaded that encoder by now (waiting for the first one when none has
        yet), and its identity: every one of them must report the same (an error else)."""
        workers = pool.ready(modality, spec) or pool.loaded(modality, spec)[:1]
        identities = pool.identities(modality, spec, workers)
        first = self._identities.setdefault((modality, spec), identities[0])
        if any(identity != first for identity in identities):
            raise ModelUnavailable(f"the Ray workers load different {modality} encoders for {spec!r} "
                                   f"({', '.join(sorted({encoder_key(i) for i in [first, *identities]}))}): "
                                   "install the same figsearch and model files on every node")
        return workers, first

    def _joined(self, pool: _Pool, modality: str, spec: str, known: list[int]) -> list[int]:
        """The workers that have loaded that encoder by now; those not in ``known`` (which are
        idle then) must report the identity the others did."""
        ready = pool.ready(modality, spec)
        first = self._identities.get((modality, spec))
        new = [n for n in ready if n not in known]
        if new and first is not None:
            for identity in pool.identities(modality, spec, new):
                if identity != first:
                    raise ModelUnavailable(f"the Ray workers load different {modality} encoders for {spec!r} "
                                           f"({', '.join(sorted({encoder_key(first), encoder_key(identity)}))}): "
                                           "install the same figsearch and model files on every node")
        known.extend(new)
        return ready

    def _last_embedding(self, modality: str) -> None:
        if modality == "text" or self._specs.get("text") in (None, NO_TEXT):
            self._done("index")

    def visual(self, collection: Collection, spec: str, encoder, todo, progress) -> EmbedReport:
        """``embed_visual`` with the encoding on the cluster: same failures, same rows, stored in the
        same order. The drawings the workers encoded while ingesting are stored as they are; the
        others are read here and encoded in batches cut so that every worker gets a share."""
        pool = self._start_pool()
        key = encoder_key(encoder)
        report = EmbedReport("visual", key)
        ready, self._vectors = self._vectors, {}
        rows: list = [None] * len(todo)  # (figure id, vector, digest), or False for a failure
        missing = []
        cut, self._cut_encoded = self._cut_encoded, set()
        for position, (figure, digest) in enumerate(todo):
            known = ready.get(figure.figure_id)
            if known is not None and known[0] == spec and digest is not None and known[1] == digest:
                rows[position] = (figure.figure_id, known[2], digest)
            else:
                missing.append(position)
                cut.discard(figure.figure_id)
        cut = len(cut & {figure.figure_id for figure, _ in todo})
        # a sheet context: the cut figures' vectors mixed as they are stored, with the vectors the workers
        # made of their sheets while ingesting (the sheets were drawings then), as the overlapped build's
        # stream mixes them: ``mix_sheet_context`` then finds them mixed, and the driver neither loads an
        # encoder nor decodes and encodes the cut sheets again after the workers are done
        beta = sheet_context_of(encoder)
        sheet_of = _encoded_sheets(collection, spec, todo, ready) if beta else {}
        self.encoded["while ingesting"] += len(todo) - len(missing) - cut
        self.encoded["cut from sheets"] += cut
        self.encoded["in the embedding stage"] += len(missing)
        workers = self._usable(pool, "visual", spec)[0]
        batch_size = max(1, min(64, -(-len(missing) // (max(1, len(workers)) * BATCHES_PER_WORKER))))
        batches = [missing[start:start + batch_size] for start in range(0, len(missing), batch_size)]

        def calls():
            for batch in batches:
                blobs, unread = [], {}
                for index, position in enumerate(batch):
                    figure = todo[position][0]
                    try:
                        blobs.append(collection.path(figure.image_path).read_bytes())
                    except OSError as exc:
                        blobs.append(None)
                        unread[index] = str(exc)
                yield (batch, unread), ("images", (spec, blobs))

        written = 0

        def flush(upto: int) -> None:
            """Store the rows before ``upto`` (all known by now) in the plan's order, 256 at a time."""
            nonlocal written
            while written < upto:
                end = min(upto, written + 256)
                good = [row for row in rows[written:end] if row]
                if sheet_of:
                    before = report.mixed
                    good = _mixed_with_sheets(good, sheet_of, beta, report)
                    self.mixed_as_stored += report.mixed - before
                if good:
                    collection.vectors.save("visual", key, good)
                    report.embedded += len(good)
                if progress:
                    progress(end - written)
                written = end

        results = pool.map(calls(), workers=workers)
        for batch in batches:
            flush(batch[0])  # what comes before this batch is known: stored while the workers encode
            (_, unread), ref = next(results)
            waiting = time.time()
            vectors, errors = pool.get(ref)
            self.events.append(("wait", waiting, time.time()))
            errors = {**errors, **unread}
            encoded = iter(() if vectors is None else vectors)
            for index, position in enumerate(batch):
                figure, digest = todo[position]
                if index in errors:
                    reason = f"cannot read stored image {figure.image_path}: {errors[index]}"
                    log.warning("figure %s: %s", figure.figure_id, reason)
                    report.failed.append((figure.figure_id, reason))
                    rows[position] = False
                else:
                    rows[position] = (figure.figure_id, next(encoded), digest)
        flush(len(todo))
        self._last_embedding("visual")
        return report

    def text(self, collection: Collection, spec: str, encoder, plan, progress) -> EmbedReport:
        """``embed_text`` with the sentences (and drawing words) encoded on the cluster: a figure's vector
        is ``text_vector`` of them, as locally; each distinct text encoded once per round. The texts
        are sorted by length and cut into pieces of about the same cost (characters), a few per
        worker, so that every worker gets a share and none waits for another at the end."""
        pool = self._start_pool()
        key = encoder_key(encoder)
        todo, drop, unchanged = plan
        report = EmbedReport("text", key, unchanged=unchanged)
        report.removed = collection.vectors.delete("text", key, drop)
        # the workers that loaded the text encoder after their ingest, if they have by now; the
        # others take pieces as soon as they have loaded it (``join``)
        workers = self._usable(pool, "text", spec)[0]
        loading = pool.loaded("text", spec)
        known = list(workers)  # ready, grown by ``_joined``
        join = (lambda: self._joined(pool, "text", spec, known)) if len(workers) < len(loading) else None
        batch_size = 256
        # the texts of the documents committed during the ingest, encoded by the workers since
        waiting = time.time()
        ahead = self._ahead.collect(pool, spec)
        self.events.append(("wait", waiting, time.time()))
        # a round is what all workers encode at once; its vectors are then written batch by batch
        round_size = batch_size * max(1, len(loading)) * IN_FLIGHT_PER_WORKER * 4
        for round_start in range(0, len(todo), round_size):
            figures = todo[round_start:round_start + round_size]
            sentences = list(dict.fromkeys(s for _, text, _ in figures for s in texts_to_encode(text)))
            cache = {s: ahead[s] for s in sentences if s in ahead}
            missing = [s for s in sentences if s not in cache]
            self.texts["before the embedding stage"] += len(cache)
            self.texts["in the embedding stage"] += len(missing)
            pieces = _pieces(missing, len(loading) * BATCHES_PER_WORKER, batch_size)
            waiting = time.time()
            calls = ((None, ("texts", (spec, p))) for p in pieces)
            late = join if len(known) < len(loading) else None
            vectors = [v for _, ref in pool.map(calls, workers=known, join=late) for v in pool.get(ref)]
            self.events.append(("wait", waiting, time.time()))
            cache.update(zip((s for p in pieces for s in p), vectors))
            for start in range(0, len(figures), batch_size):
                batch = figures[start:start + batch_size]
                # the same rows as a local build's embed_text
                collection.vectors.save("text", key, [text_row(f, text, digest, cache) for f, text, digest in batch])
                report.embedded += len(batch)
                if progress:
                    progress(len(batch))
        self._last_embedding("text")
        return report


def _encoded_sheets(collection: Collection, spec: str, todo, ready: dict) -> dict[str, tuple[np.ndarray, str]]:
    """Figure id -> (its sheet's vector, the sheet's image digest) of each figure of ``todo`` (figure, image
    digest) cut from a sheet whose vector ``ready`` holds (figure id -> (spec, image digest, vector): what
    the workers encoded while ingesting) for ``spec`` and the sheet's stored pixels. A sheet the workers did
    not encode then (ingested before the drawing encoder had loaded, or by an earlier build) is not there:
    ``mix_sheet_context`` mixes its figures after the embedding, as before."""
    parents = {figure.parent_id for figure, digest in todo if figure.parent_id and digest is not None}
    if not parents:
        return {}
    sheets = {}
    for sheet in collection.figures(roles=(FigureRole.SPLIT_SHEET,)):
        known = ready.get(sheet.figure_id) if sheet.figure_id in parents else None
        if known is not None and known[0] == spec and sheet.image_sha256 and known[1] == sheet.image_sha256:
            sheets[sheet.figure_id] = (known[2], sheet.image_sha256)
    return {figure.figure_id: sheets[figure.parent_id] for figure, digest in todo
            if digest is not None and figure.parent_id in sheets}


def _mixed_with_sheets(rows: list, sheet_of: dict, beta: float, report: EmbedReport) -> list:
    """``rows`` (figure id, plain vector, image digest) with each cut figure's vector mixed with its sheet's
    (``sheet_of``: ``_encoded_sheets``) and stored under ``context_digest``, as ``mix_sheet_context`` stores it."""
    at = [n for n, (figure_id, _, _) in enumerate(rows) if figure_id in sheet_of]
    if not at:
        return rows
    mixed = mix(np.stack([rows[n][1] for n in at]), np.stack([sheet_of[rows[n][0]][0] for n in at]), beta)
    rows = list(rows)
    for n, vector in zip(at, mixed):
        figure_id, _, digest = rows[n]
        rows[n] = (figure_id, vector, context_digest(digest, sheet_of[figure_id][1], beta))
    report.mixed += len(at)
    return rows


def build_on_ray(paths: Iterable, collection, *, address: str | None = "auto", workers: int | None = None,
                 **options):
    """``figsearch.build`` on a Ray cluster (see the module's doc); returns the same BuildReport."""
    from figsearch.pipeline.building import build

    with RayCluster(address, workers=workers) as cluster:
        return build(paths, collection, cluster=cluster, **options)


# -- helpers run on the driver -------------------------------------------------------------------

def encoder_threads(local: bool, workers: int, cpus: int) -> int:
    """The encoders' threads on each worker (the text encoder's intra-op threads, the drawing encoder's
    one-thread runs at once; a worker with 2 encodes its drawings beside its reading, ``ray_worker._EncodeBehind``):
    on a Ray instance started on this machine (``local``), the workers' share of its ``cpus``, at most 2
    (the encoders' default, that of a local build's process), so that 2 workers on 2 cores run one
    thread each (not 2 spinning threads each) and 1 worker the 2 that a local build's process runs;
    on a cluster, whose nodes' cores are not known here, the one CPU Ray gives each worker."""
    return max(1, min(2, cpus // max(1, workers))) if local else 1


def _by_cost(units: list[Unit], window: int, workers: int = 2) -> list[int]:
    """The order in which the units are sent, as indexes, window by window (each run of ``window``
    units of the plan): with one worker the plan's order; with more, first the big units (more than
    1/``BIG_SHARE`` of the window's files, when more than one, or bytes per worker), biggest first, then the others in
    the plan's order, the last ``2 * workers`` of them biggest first. The cost of a unit is its
    number of files (a grant's sheets are one TIFF each, and each is a drawing to read), then the
    bytes to read. So no worker is left alone with a big unit at the end, and the results, which
    the driver commits (and links the signs of) in the plan's order, come back mostly in that
    order: sent all biggest first, the small units of the plan's start came last, and the driver
    committed and linked most of the build after the last result."""
    def size(unit: Unit) -> tuple[int, int]:
        if unit.byte_range is not None:
            return 1, unit.byte_range[1] - unit.byte_range[0]
        total = 0
        for path in unit.files or [unit.path]:
            try:
                total += path.stat().st_size
            except OSError:
                pass
        return len(unit.files or [unit.path]), total

    def biggest_first(indexes) -> list[int]:
        return sorted(indexes, key=lambda n: tuple(-v for v in sizes[n]))

    order: list[int] = []
    for start in range(0, len(units), window):
        indexes = list(range(start, min(start + window, len(units))))
        if workers <= 1:
            order.extend(indexes)
            continue
        sizes = {n: size(units[n]) for n in indexes}
        files, data = sum(f for f, _ in sizes.values()), sum(b for _, b in sizes.values())
        big = {n for n in indexes if (sizes[n][0] > 1 and sizes[n][0] * BIG_SHARE * workers > files)
               or sizes[n][1] * BIG_SHARE * workers > data}
        rest = [n for n in indexes if n not in big]
        last = max(0, len(rest) - 2 * workers)
        order.extend(biggest_first(big) + rest[:last] + biggest_first(rest[last:]))
    return order


def _pieces(texts: list[str], count: int, most: int) -> list[list[str]]:
    """``texts`` sorted by length (longest first) and cut into about ``count`` pieces of about the
    same cost (characters plus ``TEXT_COST`` each), none longer than ``most``: texts of a length
    together, so that the encoder pads little, and shares that take about as long."""
    texts = sorted(texts, key=len, reverse=True)
    target = sum(len(t) + TEXT_COST for t in texts) / max(1, count)
    pieces: list[list[str]] = []
    piece: list[str] = []
    cost = 0
    for text in texts:
        piece.append(text)
        cost += len(text) + TEXT_COST
        if cost >= target or len(piece) >= most:
            pieces.append(piece)
            piece, cost = [], 0
    if piece:
        pieces.append(piece)
    return pieces


def _default_ocr_engine() -> str:
    from figsearch.ocr import DEFAULT_ENGINE

    return DEFAULT_ENGINE


def _encoder_specs(root: str, visual_model: str | None, text_model: str | None) -> dict[str, str]:
    """The encoders ``update_collection`` will choose for the collection at ``root`` (as it is now)."""
    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.embed.encoders.multilingual import text_model_for
    from figsearch.ingest.language import collection_language_counts

    stored_visual = stored_text = None
    languages: dict = {}
    if Path(root).is_dir():
        try:
            with Collection.open(root) as collection:
                stored_visual = collection.get_setting("visual_encoder")
                stored_text = collection.get_setting("text_encoder")
                languages = collection_language_counts(collection).documents
        except FigsearchError:
            pass  # not a collection yet: the ingest says why
    specs = {"visual": visual_model or (stored_visual or {}).get("spec") or DEFAULT_VISUAL_ENCODER}
    text = text_model_for(text_model, (stored_text or {}).get("spec"), languages).spec
    if text != NO_TEXT:
        specs["text"] = text
    return specs


def _cause(exc) -> BaseException:
    """The exception a task or an actor's start raised (a CollectionError stops the build as it does locally)."""
    for _ in range(4):  # an actor that died starting wraps its start's error, which wraps the exception
        if isinstance(exc, FigsearchError):
            return exc
        cause = getattr(exc, "cause", None)
        if not isinstance(cause, BaseException):
            break
        exc = cause
    return exc


def _payload(unit: Unit) -> tuple[Unit, str, list[bytes | None]]:
    """The unit, the folder its files are in, and their bytes (a bulk file's: only this document's)."""
    base = os.path.commonpath([str(path.parent) for path in unit.files]) if unit.files else str(unit.path.parent)
    blobs: list[bytes | None] = []
    for index, path in enumerate(unit.files):
        try:
            blobs.append(unit.read_bytes() if index == 0 and unit.byte_range is not None else path.read_bytes())
        except OSError:
            blobs.append(None)  # the reader finds it missing there, as it would here
    return unit, base, blobs


def _store_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        try:
            atomic_write_bytes(root / relative, data, tmp_dir=root / TMP_DIR)
        except OSError as exc:
            raise CollectionError(f"cannot write {relative} in collection {root}: {exc.strerror or exc}") from None
    # the runner commits these figures next: their files must survive a power cut that the commit survives
    fsync_directories({(root / relative).parent for relative in files})


def _cpus() -> int:
    """This machine's CPUs that this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _DriverIngest:
    """The driver's own ingest while Ray starts (``--ray local``), when it would only wait: a thread
    ingests documents here, the last ones of the sending order first (those the workers would take
    last), as a local build does (``process_unit``, the PNGs written into the collection), reads the
    signs of their drawings with an OCR engine of its own (``ray_worker.read_signs``, what a worker
    does) and puts the results beside the workers' (the drawings are encoded in the embedding
    stage). It begins once Ray is imported (importing it holds the interpreter; ``ray.init`` then
    mostly waits for Ray's processes), runs ``DRIVER_INGEST_NICENESS`` nicer than the driver, and
    takes no new document once Ray is up and the workers are asked for.

    A document that crashes the decoder would end the driver, not a worker: the document in hand
    is named in ``DRIVER_INGEST_FILE`` while it is ingested here, and a build that finds it named
    there (the last one stopped meanwhile) leaves it to the workers, where a crash is that
    document's failure, as in a local build."""

    def __init__(self, cluster: RayCluster, units: list[Unit], order: list[int], root: str, starting: Future,
                 arrived: queue.Queue, room: threading.Semaphore, stop: threading.Event) -> None:
        self.cluster, self.units, self.root, self.starting = cluster, units, root, starting
        self.arrived, self.room, self.stop = arrived, room, stop
        self.file = Path(root) / DRIVER_INGEST_FILE
        self.avoid = self._avoided()
        self.lock = threading.Lock()
        self.claimed: set[int] = set()
        self.mine = [i for i in reversed(order) if units[i].source not in self.avoid]
        self.seconds: dict[str, float] = collections.defaultdict(float)
        threading.Thread(target=self._run, name="figsearch-driver-ingest", daemon=True).start()

    def _avoided(self) -> list[str]:
        """The documents a stopped build was ingesting here (``DRIVER_INGEST_FILE``)."""
        try:
            state = json.loads(self.file.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []
        avoid = list(state.get("avoid") or [])
        if state.get("ingesting"):
            log.warning("%s: the last build stopped while the driver ingested it; the Ray workers ingest it",
                        state["ingesting"])
            avoid.append(state["ingesting"])
        return avoid

    def _note(self, ingesting: str | None) -> None:
        if ingesting is None and not self.avoid:
            self.file.unlink(missing_ok=True)
        else:
            self.file.write_text(json.dumps({"ingesting": ingesting, "avoid": self.avoid}))

    def claim(self, index: int) -> bool:
        """Whether ``index`` is the caller's to send (False: the driver took it)."""
        with self.lock:
            if index in self.claimed:
                return False
            self.claimed.add(index)
            return True

    def _next(self) -> int | None:
        with self.lock:
            while self.mine and not self.starting.done() and not self.stop.is_set():
                index = self.mine.pop(0)
                if index not in self.claimed:
                    self.claimed.add(index)
                    return index
            return None

    def _run(self) -> None:
        from figsearch.ingest.process import process_unit

        engine = None
        try:
            with contextlib.suppress(AttributeError, OSError):  # (Linux: a thread's own niceness)
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                               os.getpriority(os.PRIO_PROCESS, 0) + DRIVER_INGEST_NICENESS)
            while not self.cluster._imported.wait(0.1):
                if self.starting.done() or self.stop.is_set():
                    return
            if self.cluster._engine is not None:
                from figsearch.ocr import create_engine

                engine = create_engine(self.cluster._engine)
            while (index := self._next()) is not None:
                unit = self.units[index]
                self._note(unit.source)
                started = time.time()
                result = process_unit(unit, self.root)
                boxes = {} if engine is None else ray_worker.read_signs(
                    unit, result, self._stored, engine, self.seconds)
                self._note(None)
                ended = time.time()
                self.cluster.events.append(("driver ingest", started, ended))
                self.cluster.own_ingest["documents"] += 1
                self.cluster.own_ingest["drawings read"] += len(boxes)
                self.cluster.own_ingest["seconds"] += ended - started
                result.unit = None  # as from a worker: ``_take`` puts the unit back
                while not self.room.acquire(timeout=1):
                    if self.stop.is_set():
                        return
                self.arrived.put((index, (result, {}, boxes, {})))
        except BaseException as exc:  # noqa: BLE001 - raised by the writer, in its thread
            self.arrived.put(exc)
        finally:
            self.arrived.put(None)

    def _stored(self, relative: str | None) -> bytes | None:
        try:
            return (Path(self.root) / relative).read_bytes() if relative else None
        except OSError:
            return None


class _Starter:
    """One thread per process that starts Ray (and the worker actors) in the background, and then
    lives as long as the process: Ray ties the processes it starts (gcs_server, raylet) to the
    *thread* that started them (``PR_SET_PDEATHSIG``), so that thread must not end before the
    process does, as the threads of a ThreadPoolExecutor may."""

    _instance: _Starter | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._calls: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="figsearch-ray-start", daemon=True).start()

    @classmethod
    def get(cls) -> _Starter:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _run(self) -> None:
        while True:
            future, call, args = self._calls.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call(*args))
                except BaseException as exc:  # noqa: BLE001 - given to whoever waits for it
                    future.set_exception(exc)

    def submit(self, call, *args) -> Future:
        future: Future = Future()
        self._calls.put((future, call, args))
        return future


#: pools started in this process, so that a pool left behind by a build that stopped is let go
_POOLS: weakref.WeakSet = weakref.WeakSet()


class _Sent:
    """A call of ``_Pool.map``: its key, method and arguments, the ref of its result (None until it
    is sent), the worker it went to, how many tries it has ``left``, whether it was sent ``alone``
    (its worker given nothing else while it runs: sent again after a death) and whether it is ``done``."""

    __slots__ = ("key", "method", "args", "left", "ref", "worker", "alone", "done")

    def __init__(self, key, method: str, args: tuple, tries: int) -> None:
        self.key, self.method, self.args, self.left = key, method, args, tries
        self.ref, self.worker, self.alone, self.done = None, None, False, False


class _Pool:
    """The build's worker actors, fed in order: ``map`` yields (key, result ref) in submission order,
    giving each call to a free worker."""

    def __init__(self, cluster: RayCluster, engine: str | None, loads: dict[int, list[tuple[str, str]]],
                 threads: int = 1) -> None:
        for other in list(_POOLS):  # one build at a time per driver: an earlier one's workers hold CPUs
            other.close()
        self.ray = cluster.ray
        self.timings = cluster.timings
        self.events = cluster.events
        worker = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=MAX_RETRIES,
                                 concurrency_groups={"probe": 1})(_Worker)
        self.actors = [worker.remote(engine, loads[n], threads) for n in range(cluster.workers)]
        self.loading: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
        for n, specs in loads.items():
            for key in specs:
                self.loading[key].append(n)
        # each worker answers, in its own thread, once what it loads at the start is loaded (or not)
        self.probes = [actor.ready.options(concurrency_group="probe").remote() for actor in self.actors]
        _POOLS.add(self)

    def check(self, wait: bool = True) -> bool:
        """Raise the first error a worker met loading its encoders (once, then no more); True when
        every worker has loaded them. With ``wait=False`` it only looks: False while some load."""
        if not self.probes:
            return True
        if not wait:
            ready, _ = self.ray.wait(self.probes, num_returns=len(self.probes), timeout=0)
            for probe in ready:
                self.get(probe)  # an error is raised as soon as it is known
            if len(ready) < len(self.probes):
                return False
        probes, self.probes = self.probes, []
        started, wall = time.perf_counter(), time.time()
        for probe in probes:
            self.get(probe)
        self.timings["wait for the encoders check"] += time.perf_counter() - started
        self.events.append(("wait", wall, time.time()))
        self._check_niceness()
        return True

    def _check_niceness(self) -> None:
        """Warn when the workers run nicer than this driver (a cluster started without
        ``RAY_worker_niceness=0``): they then get only the CPU that every other process leaves."""
        try:
            nicer = self.ray.get(self.actors[0].niceness.options(concurrency_group="probe").remote(),
                                 timeout=10) - os.getpriority(os.PRIO_PROCESS, 0)
        except Exception:  # noqa: BLE001 - a warning only
            return
        if nicer > 0:
            log.warning("the Ray workers run %d nicer than this driver (Ray's worker_niceness): they yield the CPU "
                        "to every other process; start the cluster's nodes with RAY_worker_niceness=0", nicer)

    def load(self, modality: str, spec: str, workers: list[int]) -> list[int]:
        """Have ``workers`` load that encoder too (in the background); returns all that load it."""
        key = (modality, spec)
        for n in workers:
            if n not in self.loading[key]:
                self.actors[n].load.remote(modality, spec)
                self.loading[key].append(n)
        return sorted(self.loading[key])

    def loaded(self, modality: str, spec: str) -> list[int]:
        """The workers that load (or have loaded) that encoder."""
        return sorted(self.loading.get((modality, spec)) or range(len(self.actors)))

    def ready(self, modality: str, spec: str) -> list[int]:
        """The workers that have loaded that encoder by now (or failed to): asked without waiting."""
        workers = self.loaded(modality, spec)
        refs = [self.actors[n].loaded.options(concurrency_group="probe").remote(modality, spec) for n in workers]
        return [n for n, done in zip(workers, self.ray.get(refs)) if done]

    def identities(self, modality: str, spec: str, workers: list[int]) -> list[dict]:
        """What each worker's encoder reports, asked beside the calls in flight (not behind the texts
        they encode ahead, say): once the encoder is loaded the answer does not wait for them."""
        refs = [self.actors[n].identity.options(concurrency_group="probe").remote(modality, spec) for n in workers]
        return [self.get(ref) for ref in refs]

    def get(self, ref):
        try:
            return self.ray.get(ref)
        except (self.ray.exceptions.RayTaskError, self.ray.exceptions.RayActorError) as exc:
            cause = _cause(exc)
            if isinstance(cause, FigsearchError):  # a worker without the model files, say
                raise cause from None
            raise

    def map(self, calls: Iterable, *, per_worker: int = IN_FLIGHT_PER_WORKER, window: int | None = None,
            workers: list[int] | None = None, join=None, spare=None, tries: int | None = None,
            total: int | None = None) -> Iterator:
        """(key, ref) of each ``(key, (method, args))`` in ``calls``, in order; each call goes to a
        worker of ``workers`` (default: all) with fewer than ``per_worker`` calls in flight.
        ``join()``, asked about twice a second while calls are in flight, names workers that may
        take calls from then on (those that have loaded an encoder by now, say). ``spare(n)``,
        once every call is sent, is asked (about twice a second) for other work for a worker ``n``
        with nothing in flight: a ref, whose result is not given back here, or None.

        ``tries``: the driver, not Ray, runs a call again whose worker died, at most ``tries`` times
        in all (the ref given back then raises Ray's error). A worker that dies takes every call
        queued on it with it, and the one it was running cannot be told from the others (nor one
        that was done and whose answer was lost with the process): so a death counts as a try only
        for a call that was alone on its worker; the calls of a death with more than one in flight
        are sent again, to the same worker once it is restarted, one at a time (``_Sent.alone``),
        and a worker gets no other call meanwhile. So a call that kills every try fails alone and
        the calls queued behind it lose none of their tries. ``total``: the number of calls, when
        known: the last ``2 * len(workers)`` of them go only to a worker with nothing in flight
        (none queued behind a call that may run long while another worker has nothing left)."""
        ray = self.ray
        workers = list(range(len(self.actors))) if workers is None else list(workers)
        free = collections.deque(n for _ in range(per_worker) for n in workers)
        calls = iter(calls)
        pending: collections.deque = collections.deque()  # _Sent of each call, in submission order
        running: dict = {}  # ref waited for -> worker, until it is done
        sent: dict = {}  # ref waited for -> its _Sent (spare work has none)
        resend: dict[int, collections.deque] = collections.defaultdict(collections.deque)  # worker -> its _Sent
        count = 0  # calls taken from ``calls``
        more = True

        def submit(call: _Sent, n: int) -> None:
            free.remove(n)
            call.worker = n
            if tries is None:
                waited = call.ref = getattr(self.actors[n], call.method).remote(*call.args)
            else:  # two objects: the small first one tells how the call came back without fetching the second
                waited, call.ref = self.actors[n].acked.options(num_returns=2, max_task_retries=0).remote(
                    call.method, *call.args)
            running[waited] = n
            sent[waited] = call

        def takes_another(n: int) -> bool:
            """Whether worker ``n`` may take a new call now (it has a free slot: ``free``)."""
            if resend.get(n) or any(c.alone and c.worker == n for c in sent.values()):
                return False  # sending its calls again, one at a time
            if n not in running.values():
                return True
            return total is None or total - count > 2 * len(workers)

        def send() -> None:
            """A call to each free worker, while the window has room; first the calls to send again."""
            nonlocal more, count
            for n, calls_again in resend.items():
                if calls_again and n not in running.values() and n in free:
                    call = calls_again.popleft()
                    call.alone = True
                    submit(call, n)
            while more and len(pending) < (window or per_worker * len(workers)):
                n = next((n for n in free if takes_another(n)), None)
                if n is None:
                    return
                try:
                    key, (method, args) = next(calls)
                except StopIteration:
                    more = False
                    return
                count += 1
                call = _Sent(key, method, args, tries or 1)
                submit(call, n)
                pending.append(call)

        def came_back(ref) -> None:
            """A call is done: was it (``tries``) a death to count or to send again?"""
            n = running.pop(ref)
            free.append(n)
            call = sent.pop(ref, None)
            if call is None:  # spare work
                return
            if tries is not None:
                try:
                    ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.OutOfMemoryError):  # the worker died (Ray restarts it)
                    call.left -= call.alone
                    if call.left > 0:
                        resend[n].append(call)
                        return
                except Exception:  # noqa: BLE001 - another error: the call's ref raises it to the caller
                    pass
            call.done = True

        while True:
            if join is not None and more:
                for n in join():
                    if n not in workers:
                        workers.append(n)
                        free.extend([n] * per_worker)
            # the free workers get their next call before the calls done are given back: the caller
            # takes each result (``ray.get``: its bytes copied and unpickled) before asking for more,
            # and a worker would wait that long between two documents
            send()
            while pending and pending[0].done:
                call = pending.popleft()
                yield call.key, call.ref
            send()  # in the room that the calls given back left
            if not pending:
                return
            if spare is not None and not more:
                for n in list(free):
                    if n in free and n not in running.values() and not resend.get(n):
                        ref = spare(n)
                        if ref is not None:
                            free.remove(n)
                            running[ref] = n
            if not pending[0].done:
                idle = (join and more) or (spare is not None and not more and free)
                done, _ = ray.wait(list(running), num_returns=1, timeout=0.5 if idle else None)
                for ref in done:
                    came_back(ref)

    def stats(self) -> list[dict[str, float]]:
        """Each worker's seconds loading and in each kind of call (an empty dict for one that does not answer)."""
        refs = [actor.stats.options(concurrency_group="probe").remote() for actor in self.actors]
        out = []
        for ref in refs:
            try:
                out.append({k: round(v, 2) for k, v in self.ray.get(ref, timeout=10).items()})
            except Exception:  # noqa: BLE001 - statistics only: a dead worker has none
                out.append({})
        return out

    def timelines(self) -> list:
        """Each worker's start and its calls' wall times (an empty one for a worker that does not answer)."""
        refs = [actor.timeline.options(concurrency_group="probe").remote() for actor in self.actors]
        out = []
        for ref in refs:
            try:
                out.append(self.ray.get(ref, timeout=10))
            except Exception:  # noqa: BLE001 - statistics only: a dead worker has none
                out.append((0.0, []))
        return out

    def close(self) -> None:
        for actor in self.actors:  # their CPUs go back to the cluster
            self.ray.kill(actor)
        self.actors = []
        _POOLS.discard(self)


class _RayReadAhead:
    """The text boxes of each drawing, read by the workers ahead of the driver, in the order given."""

    def __init__(self, cluster: RayCluster, pool: _Pool, collection: Collection, drawings: list[Figure],
                 engine, prefetched: dict[str, tuple], numerals: dict[str, bool] | None = None) -> None:
        self.cluster = cluster
        self.results = None
        self.pool, self.collection = pool, collection
        # the figures cut from a sheet are encoded by the workers as soon as the driver has cut and
        # stored them (``cut``): the workers are idle meanwhile, the driver parsing and linking
        spec = cluster._specs.get("visual")
        self.spec = spec if spec and len(cluster._vectors) < VECTORS_LIMIT else None
        self.aheads: dict = {}
        if engine is None or not drawings:
            return
        self.ids = iter([f.figure_id for f in drawings])
        # drawings a worker read right after ingesting them (the same stored bytes): not read again
        done = {f.figure_id: prefetched[f.figure_id][1] for f in drawings
                if f.figure_id in prefetched and prefetched[f.figure_id][0] == f.image_path}
        #: the words and sheet parts the worker worked out from the same pixels (``signs.Ahead``)
        self.aheads = {i: prefetched[i][2] for i in done if len(prefetched[i]) > 2}
        todo = [f for f in drawings if f.figure_id not in done]
        log.info("signs: %d drawings read while ingesting, %d to read", len(done), len(todo))
        cluster.reads["while ingesting"] += len(done)
        cluster.reads["in the signs stage"] += len(todo)

        def calls():
            for figure in todo:
                try:
                    data = collection.path(figure.image_path).read_bytes() if figure.image_path else None
                except OSError:
                    data = None  # the driver finds it unreadable too and says why
                yield None, ("read", (engine.name, data, (numerals or {}).get(figure.patent, True)))

        read = (pool.get(ref) for _, ref in pool.map(calls(), per_worker=READS_PER_WORKER))
        self.results = (done[f.figure_id] if f.figure_id in done else next(read) for f in drawings)

    def boxes(self, figure: Figure):
        if self.results is None or figure.role != FigureRole.DRAWING:
            return None
        expected = next(self.ids)
        if expected != figure.figure_id:
            raise RuntimeError(f"read-ahead out of order: {expected} read, {figure.figure_id} written")
        waiting = time.time()
        try:
            return next(self.results)
        finally:
            self.cluster.events.append(("wait", waiting, time.time()))

    def ahead(self, figure: Figure):
        """What the worker worked out for the drawing ``boxes`` last gave (``signs.Ahead``), or None."""
        return self.aheads.pop(figure.figure_id, None)

    def cut(self, children: list[tuple[Figure, list]]) -> None:
        """Have a worker encode the figures just cut from a sheet (``process_figure``'s children),
        from their stored PNG bytes, as the embedding stage would."""
        if self.spec is not None:
            self.cluster._encode_cut(self.collection, children, self.spec)

    def __enter__(self) -> _RayReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.results = None
        if exc[0] is None:
            self.cluster._collect_cut()
        self.cluster._done("signs")


class _TextsAhead:
    """The texts (sentences, drawing words) of the documents that the driver committed and linked
    during the ingest (``_signs_while_ingesting``), encoded by the workers before the embedding
    stage asks for them: by a worker that has no document left to ingest while the others finish
    theirs (``spare`` of ``_Pool.map``), then, once the ingest is over, all that are left, spread
    over the workers, while the driver finishes the signs and stores the drawings' vectors
    (``flush``). The embedding stage takes their vectors (``collect``) and encodes only the texts
    not among them, with the same encoder; a text's vector does not depend on the texts it is
    encoded with beyond float rounding, as with the embedding stage's own pieces."""

    def __init__(self, spec: str | None = None) -> None:
        #: the text encoder the workers load (None: no text, nothing is encoded ahead)
        self.spec = spec if spec not in (None, NO_TEXT) else None
        self._lock = threading.Lock()
        self._known: set[str] = set()  # every text added (sent or not)
        self._todo: dict[str, None] = {}  # texts not sent yet, in the order they came
        self._calls: list[tuple[list[str], object]] = []  # (texts, ref of their vectors)
        self._flushing: list[threading.Thread] = []  # the threads handing out ``flush``'s pieces

    def add(self, texts: Iterable[str]) -> None:
        if self.spec is None:
            return
        texts = list(texts)  # (read from the collection before the lock: ``spare`` takes it in another thread)
        with self._lock:
            for text in texts:
                if text not in self._known and len(self._known) < TEXTS_LIMIT:
                    self._known.add(text)
                    self._todo[text] = None

    def take(self, most: int | None = None) -> list[str]:
        """Up to ``most`` texts not sent yet (all of them with None), in the order they came."""
        with self._lock:
            texts = list(itertools.islice(self._todo, most))
            for text in texts:
                del self._todo[text]
        return texts

    def send(self, pool: _Pool, n: int, texts: list[str]):
        """Have worker ``n`` encode ``texts``; the ref of their vectors (None when there are none)."""
        if not texts:
            return None
        ref = pool.actors[n].texts.remote(self.spec, texts)
        with self._lock:
            self._calls.append((texts, ref))
        return ref

    def flush(self, pool: _Pool) -> None:
        """Send every text not sent yet, in pieces of about the same cost, a few per worker, from a
        thread of this process: each piece to a worker once it has encoded its last one (``_Pool.map``),
        not in turn: given in turn, the two workers of 2-worker builds ended their pieces 1.0 to 1.2 s
        apart (four builds on the loaded development machine), one idle meanwhile; handed out so, 0.0
        and 0.3 s apart (two). ``collect`` waits for the thread."""
        texts = self.take()
        if not texts or not pool.actors:
            return
        pieces = _pieces(texts, len(pool.actors) * BATCHES_PER_WORKER, 256)

        def hand_out() -> None:
            try:
                calls = ((p, ("texts", (self.spec, p))) for p in pieces)
                for piece, ref in pool.map(calls, per_worker=1, window=len(pieces)):  # (not held up by the first)
                    with self._lock:
                        self._calls.append((piece, ref))
            except Exception as exc:  # noqa: BLE001 - the embedding stage encodes what is missing, and says why
                log.warning("texts not encoded before the embedding stage: %s", exc)

        thread = threading.Thread(target=hand_out, name="figsearch-ray-texts", daemon=True)
        self._flushing.append(thread)
        thread.start()

    def wait(self) -> None:
        """Wait for the pieces of every ``flush`` to be handed out and encoded."""
        flushing, self._flushing = self._flushing, []
        for thread in flushing:
            thread.join()

    def collect(self, pool: _Pool, spec: str) -> dict[str, np.ndarray]:
        """text -> vector of what was sent, encoded with ``spec`` (nothing for another encoder, chosen
        when the ingest changed the collection's languages); what a worker failed on is left out."""
        self.wait()
        with self._lock:
            calls, self._calls = self._calls, []
        out: dict[str, np.ndarray] = {}
        for texts, ref in calls:
            try:
                vectors = pool.get(ref)
            except Exception as exc:  # noqa: BLE001 - the embedding stage encodes them, and says why it fails
                log.warning("texts not encoded before the embedding stage: %s", exc)
                continue
            if spec == self.spec:
                out.update(zip(texts, vectors))
        return out


class _SignsWhileIngesting(CommittedForwarder):
    """The ingest's progress (``RayCluster.ingest_progress``): passes everything on to the caller's,
    and once a document is committed has the driver write the signs of its drawings."""

    def __init__(self, cluster: RayCluster, collection: Collection, inner) -> None:
        super().__init__(inner)
        self.cluster, self.collection = cluster, collection

    def committed(self, numbers: list[str]) -> None:
        if numbers:
            self.cluster._signs_while_ingesting(self.collection, dict.fromkeys(numbers))
        if self.cluster._ingest_left == 0:
            # the ingest's last document is in and linked: the texts not sent yet go to the workers
            # now, to be encoded while the driver finishes the signs and stores the drawings' vectors
            self.cluster._flush_texts()


class _RemoteEncoder:
    """The driver's stand-in for an encoder loaded by the workers: what it records is the identity."""

    def __init__(self, identity: dict) -> None:
        self.identity = identity
        self.name, self.dim = identity.get("name", ""), identity.get("dim", 0)
