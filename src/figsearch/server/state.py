"""What the routes share: the backend, the collection's files, the limits, and the thread pools
that backend calls run in.

Backend calls block (SQLite, FAISS, the encoders), so they run off the event loop, in pools of
our own rather than in Starlette's shared one:

* ``uploads``: what decodes and encodes an image (a search with an uploaded or cropped drawing,
  the preview of an upload), the slowest calls; ``threads`` at once, at a lower CPU priority
  (Linux niceness is per thread) so that the event loop and the quick searches get the cores
  first when uploads saturate them. The searches and lookups are niced too, less: the event
  loop comes before every backend call.
* ``searches``: searches by a figure of the collection or by words (stored vectors, the text
  encoder, FAISS): milliseconds each, so they get threads of their own rather than waiting in
  line behind uploads that take hundreds of milliseconds (head-of-line blocking).
* ``lookups``: figure and patent details, info, the paths of figure files; short store reads.
* ``/api/health`` runs no thread and touches no pool, lock or database on the event loop: a
  thread of its own (``HealthWatch``) reads the collection's database every half second, and
  health answers with its last finding, so it answers while every pool is full.

A busy process also delays the event loop through the GIL: a thread that computes holds it for
the interpreter's switch interval (5 ms by default) each time the loop wants it back, and the loop
gives it up at every socket write. While the app runs, the interval is ``SWITCH_INTERVAL_S``.

Each pool admits at most ``threads + queue`` calls (running or waiting). One more is refused at
once with ``ServerBusy`` (503 with ``Retry-After``): a client waits a bounded time or is told to
come back, never waits unboundedly. Static files are served by Starlette's own pool, which no
backend call uses.

The backend's methods may be called from several threads at once: ``SearchBackend``
implementations are read-only and thread-safe (``figsearch.search.service``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from figsearch.errors import CollectionError, NotFound
from figsearch.fsutil import name_native_thread
from figsearch.records import Figure
from figsearch.search.api import SearchBackend
from figsearch.server.errors import ServerBusy
from figsearch.server.uploads import Limits
from figsearch.store import Collection

T = TypeVar("T")

#: waiting calls admitted per pool beyond the running ones, unless told otherwise
DEFAULT_QUEUE = 32
#: a call that would likely wait longer than this for a thread is refused (503) instead
MAX_WAIT_S = 30.0
#: the health check's connection waits at most this long for a lock
HEALTH_BUSY_TIMEOUT_MS = 200
#: how often the health thread reads the database
HEALTH_INTERVAL_S = 0.5
#: a finding older than this is no finding: health answers 503 (the health thread is stuck)
HEALTH_STALE_S = 10.0
#: how long the server's start waits for the health thread's first reading of the database
HEALTH_FIRST_READ_WAIT_S = 5.0
#: the GIL switch interval while the app runs: the event loop gets the GIL back within this
#: (Python's default, 5 ms, made each socket write of the loop wait up to 5 ms behind a computing thread)
SWITCH_INTERVAL_S = 0.001
#: upload threads run this much nicer than the rest of the server
UPLOAD_NICENESS = 5
#: search and lookup threads run this much nicer than the event loop (and less nice than uploads):
#: the loop, which answers health and reads every request, gets a core before any backend call
SEARCH_NICENESS = 2
#: the event loop's thread runs this much less nice than the process when the system allows it (Linux:
#: root or CAP_SYS_NICE; elsewhere it keeps the process's priority): health and every request's
#: reading wait for a core behind no thread of this machine's at the default priority. The loop uses
#: a few ms of CPU per request, so it cannot starve them. Threads it starts later inherit it.
LOOP_PRIORITY_BOOST = 5
#: threads one backend call computes with (the encoders' intra-op threads): the server's concurrency
#: comes from its calls and its worker processes, so each call gets one (see SearchService.limit_threads)
COMPUTE_THREADS = 1


def machine_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int = 1) -> int:
    """Threads per pool and worker process: the cores shared out between the workers, at least 1. Each
    process has three pools (uploads, searches, lookups), so even one thread each lets a call that
    waits on SQLite or a file overlap another; two each (the rule before stop 30) put up to six
    computing threads per process on a 2-core machine's two workers, which cost 10-15 % more CPU per
    answer under load and doubled the searches' p50 (docs/serving.md, "The lead's load tests after the
    stop-30 merge")."""
    return max(1, machine_cores() // max(1, workers))


class BoundedPool:
    """``threads`` threads and at most ``threads + queue`` admitted calls; past that, ServerBusy.
    A newcomer is also refused when the calls ahead of it would likely keep it waiting more than
    ``max_wait_s`` (from the recent calls' mean duration): a queue of 32 uploads of 3 s each on a
    loaded machine kept the last one waiting past the clients' 120 s timeout.

    The count is released by the thread when the call ends, not by the request: a client that
    hangs up does not free a slot its call still occupies, so the pool's queue never exceeds
    its bound.
    """

    def __init__(self, name: str, threads: int, queue: int, *, niceness: int = 0,
                 max_wait_s: float = MAX_WAIT_S) -> None:
        if threads < 1 or queue < 0:
            raise ValueError(f"pool {name}: threads must be >= 1 and queue >= 0, not {threads} and {queue}")
        self.name = name
        self.niceness = niceness
        self.threads = threads
        self.capacity = threads + queue
        self.max_wait_s = max_wait_s
        self._executor = self._new_executor()
        self._lock = threading.Lock()
        self._admitted = 0
        self._peak = 0
        self._mean_s = 0.1  # running mean of a call's duration, for Retry-After

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def peak(self) -> int:
        return self._peak

    def retry_after(self) -> int:
        """Seconds until a full queue has likely drained enough to take one more call."""
        return max(1, min(60, math.ceil(self._mean_s * self.capacity / self.threads)))

    def expected_wait_s(self) -> float:
        """How long a call admitted now would likely wait for a thread."""
        ahead = self._admitted - self.threads + 1
        return max(0, ahead) * self._mean_s / self.threads

    async def run(self, fn: Callable[..., T], *args, timing: dict | None = None) -> T:
        """``fn(*args)`` on one of the pool's threads. ``timing``, when given, receives the call's
        ``queue`` (ms from admission to a thread taking it up), ``run`` (ms the call took on its
        thread) and ``cpu`` (ms of that thread's CPU during the call): ``run - cpu`` is time the call
        spent off the cores, of which ``runq`` (Linux) is the time it was ready and waiting for a core
        (the kernel's ``/proc/thread-self/schedstat``); the rest is waiting for the GIL or in a blocking
        system call."""
        admitted_at = time.perf_counter()
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServerBusy(
                    f"the server is busy ({self._admitted} {self.name} running or waiting); retry shortly",
                    retry_after=self.retry_after(),
                )
            if self.expected_wait_s() > self.max_wait_s:
                raise ServerBusy(
                    f"the server is busy ({self._admitted} {self.name} running or waiting, about "
                    f"{self.expected_wait_s():.0f} s of work); retry shortly",
                    retry_after=max(1, min(60, math.ceil(self.expected_wait_s() - self.max_wait_s))),
                )
            self._admitted += 1
            self._peak = max(self._peak, self._admitted)

        def call() -> T:
            started = time.perf_counter()
            cpu = time.thread_time()
            waited = thread_run_delay() if timing is not None else None
            try:
                return fn(*args)
            finally:
                took = time.perf_counter() - started
                if timing is not None:
                    timing.update(queue=(started - admitted_at) * 1000, run=took * 1000,
                                  cpu=(time.thread_time() - cpu) * 1000)
                    if waited is not None and (now := thread_run_delay()) is not None:
                        timing["runq"] = (now - waited) * 1000
                with self._lock:
                    self._admitted -= 1
                    self._mean_s = 0.9 * self._mean_s + 0.1 * took

        try:
            future = self._executor.submit(call)
        except RuntimeError:  # shut down: the app is stopping
            with self._lock:
                self._admitted -= 1
            raise ServerBusy("the server is shutting down", retry_after=5) from None
        return await asyncio.wrap_future(future)

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.threads, thread_name_prefix=f"figsearch-{self.name}",
                                  initializer=_init_thread, initargs=(f"fs-{self.name}", self.niceness))

    def prestart(self, timeout: float = 10.0) -> int:
        """Starts all of the pool's threads now (at the app's start), so that no call starts one: an
        executor starts its threads on demand, in ``submit``, on the event loop, and ``Thread.start``
        waits there until the new thread runs (py-spy caught each worker's loop there for 75-100 ms
        while it started two upload threads, on the loaded machine). Returns the threads started
        (fewer if ``timeout`` passed)."""
        barrier = threading.Barrier(self.threads)

        def meet() -> None:
            try:
                barrier.wait(timeout)
            except threading.BrokenBarrierError:
                pass

        # each call waits for the others, so none ends before every thread runs one of them
        futures = [self._executor.submit(meet) for _ in range(self.threads)]
        for future in futures:
            future.result(timeout + 1)
        return len(self._executor._threads)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def reopen(self) -> None:
        """After shutdown, a fresh executor (an app's lifespan may run more than once, as in tests)."""
        if self._executor._shutdown:
            self._executor = self._new_executor()


def thread_run_delay() -> float | None:
    """Seconds the calling thread has waited on a run queue, ready but without a core, since it
    started (Linux: the second field of ``/proc/thread-self/schedstat``); None where the kernel does
    not say. About 10 us a read."""
    try:
        handle = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return None
    try:
        return int(os.read(handle, 100).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None
    finally:
        os.close(handle)


def _init_thread(name: str, niceness: int) -> None:
    name_native_thread(name)
    _lower_priority(niceness)


def raise_thread_priority(boost: int) -> int | None:
    """Makes the calling thread ``boost`` less nice; returns its niceness before, or None when the
    system does not allow it (an unprivileged process) or has no per-thread niceness."""
    if boost <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return None
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, max(-20, before - boost))
    except OSError:
        return None
    return before


def restore_thread_priority(before: int | None) -> None:
    if before is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), before)
    except OSError:
        pass


def _lower_priority(niceness: int) -> None:
    """Makes the calling thread ``niceness`` nicer (Linux: niceness is per thread; elsewhere a no-op)."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        pass  # not allowed here: the thread keeps the process's priority


log = logging.getLogger(__name__)

#: how often the event loop's lag is sampled (LoopLag)
LOOP_LAG_INTERVAL_S = 0.02
#: LoopLag reports the largest lag of the current and the previous window of this length
LOOP_LAG_WINDOW_S = 1.0


class LoopLag:
    """How late the event loop runs its callbacks, and why: a task asks to sleep ``interval`` seconds
    and records how much later than that it woke, and how that delay splits into the loop thread's
    own CPU over the interval (``busy``: callbacks ahead of it: parsing requests, building answers),
    its time ready but waiting for a core (``runq``, from the kernel's ``/proc/thread-self/schedstat``,
    Linux only) and the rest (``other``: waiting for the GIL, or blocked in a system call). ``recent()``
    is the largest lag of the current and the previous window (1-2 s) with its split; ``/api/health``
    reports it in its ``Server-Timing`` header (``lag;dur=…, lag-busy;dur=…, lag-runq;dur=…``), so a
    slow probe can be told apart from a slow loop, and a busy loop from a starved one. 50 wake-ups a
    second, each reading two clocks and one small /proc file: about 1-2 ms of CPU a second."""

    def __init__(self, interval: float = LOOP_LAG_INTERVAL_S, window: float = LOOP_LAG_WINDOW_S) -> None:
        self.interval = interval
        self.window = window
        self._current = self._previous = (0.0, 0.0, 0.0)  # (lag, busy, runq) in seconds
        self._window_start = 0.0
        self._task: asyncio.Task | None = None
        self._schedstat: int | None = None

    def start(self) -> None:
        """On the event loop (the app's lifespan)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _run_delay(self) -> float:
        """Seconds this thread has waited on a run queue (0.0 where the kernel does not say)."""
        if self._schedstat is None:
            try:
                self._schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
            except OSError:
                self._schedstat = -1
        if self._schedstat < 0:
            return 0.0
        try:
            return int(os.pread(self._schedstat, 100, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._window_start = loop.time()
        while True:
            asked, cpu, waited = loop.time(), time.thread_time(), self._run_delay()
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.record(now - asked - self.interval, now, busy=time.thread_time() - cpu,
                        runq=self._run_delay() - waited)

    def record(self, lag: float, now: float, busy: float = 0.0, runq: float = 0.0) -> None:
        if now - self._window_start >= self.window:
            recent = now - self._window_start < 2 * self.window
            self._previous = self._current if recent else (0.0, 0.0, 0.0)
            self._current = (0.0, 0.0, 0.0)
            self._window_start = now
        if lag > self._current[0]:
            self._current = (lag, busy, runq)

    def recent(self) -> tuple[float, float, float]:
        """(lag, busy, runq) in ms of the largest lag of the last 1-2 s."""
        worst = max(self._current, self._previous)
        return tuple(1000.0 * max(v, 0.0) for v in worst)  # type: ignore[return-value]

    def recent_ms(self) -> float:
        return self.recent()[0]

    def server_timing(self) -> str:
        lag, busy, runq = self.recent()
        return f"lag;dur={lag:.1f}, lag-busy;dur={busy:.1f}, lag-runq;dur={runq:.1f}"

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._schedstat is not None and self._schedstat >= 0:
            os.close(self._schedstat)
        self._schedstat = None


class HealthWatch:
    """Reads the collection's database from a thread of its own, every ``interval`` seconds, on a
    connection of its own; ``problem()`` is the last finding, read without waiting for anything."""

    def __init__(self, root: Path, interval: float = HEALTH_INTERVAL_S) -> None:
        self.root = root
        self.interval = interval
        self._finding: tuple[float, str | None] = (0.0, "the collection's database was not read yet")
        self._stop = threading.Event()
        self._first_read = threading.Event()
        self._thread: threading.Thread | None = None
        self._collection: Collection | None = None

    def check(self) -> None:
        """Reads the database once (from whichever thread calls it) and keeps the finding."""
        try:
            if self._collection is None:
                self._collection = Collection.open(self.root)
            self._collection.ping(HEALTH_BUSY_TIMEOUT_MS)
            problem = None
        except CollectionError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever fails, health must say so, not die
            problem = f"the collection's database cannot be read: {exc}"
        self._finding = (time.monotonic(), problem)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._first_read.clear()
        self._thread = threading.Thread(target=self._run, name="figsearch-health", daemon=True)
        self._thread.start()
        # wait (once, at start-up, bounded) for the thread's first reading, so that a health probe
        # right after start does not find "not read yet" while the thread is still being scheduled
        self._first_read.wait(HEALTH_FIRST_READ_WAIT_S)

    def _run(self) -> None:
        name_native_thread("fs-health")
        self.check()
        self._first_read.set()
        while not self._stop.wait(self.interval):
            self.check()
        if self._collection is not None:
            self._collection.close()
            self._collection = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        elif self._collection is not None:  # read inline only (no lifespan)
            self._collection.close()
            self._collection = None

    def problem(self) -> str | None:
        """None when the database answered within the last HEALTH_STALE_S seconds, else why not."""
        at, problem = self._finding
        if problem is None and time.monotonic() - at > HEALTH_STALE_S:
            return f"the collection's database has not been read for {time.monotonic() - at:.0f} s"
        return problem


class ServerState:
    """The backend, the collection's files and limits, and the pools backend calls run in."""

    def __init__(
        self,
        backend: SearchBackend,
        collection_root: Path,
        limits: Limits,
        *,
        threads: int | None = None,
        queue: int = DEFAULT_QUEUE,
        compute_threads: int | None = COMPUTE_THREADS,
    ) -> None:
        self.backend = backend
        self.root = Path(collection_root)
        self.limits = limits
        threads = threads or default_threads()
        self.uploads = BoundedPool("uploads", threads, queue, niceness=UPLOAD_NICENESS)
        self.searches = BoundedPool("searches", threads, queue, niceness=SEARCH_NICENESS)
        # lookups are short reads: twice the threads, so a burst of thumbnails is not serialised
        self.lookups = BoundedPool("lookups", max(2, 2 * threads), 2 * queue, niceness=SEARCH_NICENESS)
        self.health_watch = HealthWatch(self.root)
        #: how late the event loop ran lately (reported by /api/health)
        self.loop_lag = LoopLag()
        # before any model is loaded (warm, or the first search): onnxruntime fixes its threads then
        limit = getattr(backend, "limit_threads", None)
        if callable(limit):
            limit(compute_threads)
        self._switch_interval: float | None = None
        self._frozen = False
        self._closed = False
        self._freeze_lock = threading.Lock()
        #: set when the models were loaded at start (start_warming) and the heap frozen
        self.warmed = threading.Event()
        self._local = threading.local()
        #: the worker's share of its siblings' connections (figsearch.server.balance), when it has siblings
        self.balance = None
        #: what /api/health answers (figsearch.server.app.HealthAnswer), set by create_app
        self.health_answer = None

    async def search(self, fn: Callable[..., T], *args, timing: dict | None = None) -> T:
        """A search without an image to encode, in the search pool."""
        return await self.searches.run(fn, *args, timing=timing)

    async def upload(self, fn: Callable[..., T], *args, timing: dict | None = None) -> T:
        """A call that decodes or encodes an image, in the upload pool."""
        return await self.uploads.run(fn, *args, timing=timing)

    async def lookup(self, fn: Callable[..., T], *args) -> T:
        """A short store read in the lookup pool."""
        return await self.lookups.run(fn, *args)

    def health(self) -> None:
        """The collection's database answered the health thread lately (ServerBusy when not). On the
        event loop this reads one attribute: no database, no lock, no pool. Without the app's
        lifespan (no health thread) the database is read here, on the calling thread."""
        if not self.health_watch.running:
            self.health_watch.check()
        problem = self.health_watch.problem()
        if problem is not None:
            raise ServerBusy(problem, retry_after=5)

    @property
    def pools(self) -> tuple[BoundedPool, ...]:
        return (self.uploads, self.searches, self.lookups)

    def open(self) -> None:
        self._closed = False
        for pool in self.pools:
            pool.reopen()
            pool.prestart()
        self.health_watch.start()
        if self._switch_interval is None:
            self._switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL_S))

    def start_warming(self) -> None:
        """Loads the backend's models (``warm()``, when it has one) in a daemon thread while the server
        already answers (the page and health must not wait for models), then moves every object
        alive into the garbage collector's permanent generation (``gc.freeze``). A worker holds about
        half a million objects once its models are loaded; a full collection walked them all, holding
        the GIL, so every thread and the event loop stopped for it (1.7 s on a loaded 2-core machine,
        measured; health answered in 1.1 s). Frozen objects are not walked again. ``warmed`` is set
        when it is done."""
        self.warmed.clear()
        threading.Thread(target=self._warm, name="figsearch-warm", daemon=True).start()

    def _warm(self) -> None:
        name_native_thread("fs-warm")
        warm = getattr(self.backend, "warm", None)
        try:
            if callable(warm):
                warm()
        except Exception as exc:  # noqa: BLE001 - a search that needs the model reports it
            log.warning("models not loaded ahead: %s", exc)
        finally:
            with self._freeze_lock:
                if not self._closed:
                    gc.freeze()
                    self._frozen = True
            self.warmed.set()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown()
        with self._freeze_lock:
            self._closed = True
            if self._frozen:
                gc.unfreeze()
                self._frozen = False
        self.health_watch.stop()
        if self._switch_interval is not None:
            sys.setswitchinterval(self._switch_interval)
            self._switch_interval = None

    def collection(self) -> Collection:
        # one read-only connection per thread; SQLite's WAL lets them read while an ingest writes
        collection = getattr(self._local, "collection", None)
        if collection is None:
            collection = Collection.open(self.root)
            self._local.collection = collection
        return collection

    def figure_file(self, figure_id: str, which: str) -> tuple[Figure, Path]:
        """The stored image (``which`` = "image") or thumbnail of a figure, never a path outside the collection."""
        collection = self.collection()
        figure = collection.figure(figure_id)
        relative = figure.thumbnail_path if which == "thumbnail" else None
        relative = relative or figure.image_path
        if not relative:
            raise NotFound(f"figure {figure_id!r} has no stored image")
        path = collection.path(relative)
        if not path.is_file():
            raise NotFound(f"the image file of figure {figure_id!r} is missing from the collection")
        return figure, path
