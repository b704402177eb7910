"""What the routes share: the backend, the collection's files, the limits, and the thread pools
that backend calls run in.

Backend calls block (SQLite, FAISS, the encoders), so they run off the event loop, in pools of
our own rather than in Starlette's shared one:

* ``uploads``: what decodes and encodes an image (a search with an uploaded or cropped drawing,
  the preview of an upload), the slowest calls; ``threads`` at once, at a lower CPU priority
  (Linux niceness is per thread) so that the event loop and the quick searches get the cores
  first when uploads saturate them.
* ``searches``: searches by a figure of the collection or by words (stored vectors, the text
  encoder, FAISS): milliseconds each, so they get threads of their own rather than waiting in
  line behind uploads that take hundreds of milliseconds (head-of-line blocking).
* ``lookups``: figure and patent details, info, the paths of figure files; short store reads.
* ``/api/health`` runs no thread at all: one ``SELECT 1`` on a connection of the event loop's
  own, which WAL-mode SQLite answers in microseconds, so it answers while every pool is full.

Each pool admits at most ``threads + queue`` calls (running or waiting). One more is refused at
once with ``ServerBusy`` (503 with ``Retry-After``): a client waits a bounded time or is told to
come back, never waits unboundedly. Static files are served by Starlette's own pool, which no
backend call uses.

The backend's methods may be called from several threads at once: ``SearchBackend``
implementations are read-only and thread-safe (``figsearch.search.service``).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from figsearch.errors import CollectionError, NotFound
from figsearch.records import Figure
from figsearch.search.api import SearchBackend
from figsearch.server.errors import ServerBusy
from figsearch.server.uploads import Limits
from figsearch.store import Collection

T = TypeVar("T")

#: waiting calls admitted per pool beyond the running ones, unless told otherwise
DEFAULT_QUEUE = 32
#: the health check's connection waits at most this long for a lock (it runs on the event loop)
HEALTH_BUSY_TIMEOUT_MS = 200
#: upload threads run this much nicer than the rest of the server
UPLOAD_NICENESS = 5


def machine_cores() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(workers: int = 1) -> int:
    """Search threads per worker process: the cores shared out between the workers, at least 2
    (a search waits on SQLite and file reads part of the time)."""
    return max(2, machine_cores() // max(1, workers))


class BoundedPool:
    """``threads`` threads and at most ``threads + queue`` admitted calls; past that, ServerBusy.

    The count is released by the thread when the call ends, not by the request: a client that
    hangs up does not free a slot its call still occupies, so the pool's queue never exceeds
    its bound.
    """

    def __init__(self, name: str, threads: int, queue: int, *, niceness: int = 0) -> None:
        if threads < 1 or queue < 0:
            raise ValueError(f"pool {name}: threads must be >= 1 and queue >= 0, not {threads} and {queue}")
        self.name = name
        self.niceness = niceness
        self.threads = threads
        self.capacity = threads + queue
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

    async def run(self, fn: Callable[..., T], *args) -> T:
        with self._lock:
            if self._admitted >= self.capacity:
                raise ServerBusy(
                    f"the server is busy ({self._admitted} {self.name} running or waiting); retry shortly",
                    retry_after=self.retry_after(),
                )
            self._admitted += 1
            self._peak = max(self._peak, self._admitted)

        def call() -> T:
            started = time.perf_counter()
            try:
                return fn(*args)
            finally:
                took = time.perf_counter() - started
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
                                  initializer=_lower_priority, initargs=(self.niceness,))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def reopen(self) -> None:
        """After shutdown, a fresh executor (an app's lifespan may run more than once, as in tests)."""
        if self._executor._shutdown:
            self._executor = self._new_executor()


def _lower_priority(niceness: int) -> None:
    """Makes the calling thread ``niceness`` nicer (Linux: niceness is per thread; elsewhere a no-op)."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:
        pass  # not allowed here: the thread keeps the process's priority


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
    ) -> None:
        self.backend = backend
        self.root = Path(collection_root)
        self.limits = limits
        threads = threads or default_threads()
        self.uploads = BoundedPool("uploads", threads, queue, niceness=UPLOAD_NICENESS)
        self.searches = BoundedPool("searches", threads, queue)
        # lookups are short reads: twice the threads, so a burst of thumbnails is not serialised
        self.lookups = BoundedPool("lookups", max(2, 2 * threads), 2 * queue)
        self._health_collection: Collection | None = None
        self._local = threading.local()

    async def search(self, fn: Callable[..., T], *args) -> T:
        """A search without an image to encode, in the search pool."""
        return await self.searches.run(fn, *args)

    async def upload(self, fn: Callable[..., T], *args) -> T:
        """A call that decodes or encodes an image, in the upload pool."""
        return await self.uploads.run(fn, *args)

    async def lookup(self, fn: Callable[..., T], *args) -> T:
        """A short store read in the lookup pool."""
        return await self.lookups.run(fn, *args)

    def health(self) -> None:
        """The collection's database answers: checked on the calling (event loop) thread, with a
        connection of its own whose lock wait is bounded, never behind a pool's queue."""
        if self._health_collection is None:
            self._health_collection = Collection.open(self.root)
        try:
            self._health_collection.ping(HEALTH_BUSY_TIMEOUT_MS)
        except CollectionError as exc:
            raise ServerBusy(str(exc), retry_after=5) from None

    @property
    def pools(self) -> tuple[BoundedPool, ...]:
        return (self.uploads, self.searches, self.lookups)

    def open(self) -> None:
        for pool in self.pools:
            pool.reopen()

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown()
        if self._health_collection is not None:
            self._health_collection.close()
            self._health_collection = None

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
