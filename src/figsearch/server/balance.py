"""Spreading kept-alive connections evenly over the worker processes of one server.

With ``serve --workers N`` each worker accepts connections on a listener of its own, all bound to one
port with ``SO_REUSEPORT`` (Linux; ``figsearch.cli.serve_cmd.open_listeners``): the kernel hands each
new connection to one listener by a hash of the client's address and port. Before, the workers shared
one listening socket, and the worker that woke first accepted every connection waiting at that moment
(uvloop and asyncio accept in a loop): clients that connected together landed on one worker, and
keep-alive kept them there (in a load test of 20 clients, one worker used 13.9 CPU s in 30 s and the
other 0.1 s). A hash still gives uneven shares by chance (20 clients over 2 workers: 13 / 7 or worse
about one time in four), and where the kernel does not spread connections the workers still share one
listener, so the counts below still even them out.

Each worker counts its active connections (a request in flight, or one within the last
``WINDOW_S`` seconds; a connection is the client's address and port) and publishes the count in a
small file beside its siblings' (``peers_dir``: one folder per supervisor process, in the
temporary directory). A thread of its own reads the siblings' counts every ``INTERVAL_S``. It
starts with the app (its lifespan), not at the worker's first request: a worker that no client
reached yet must still publish its 0, or a sibling holding every connection sees no sibling and
closes none (an idle run of the load test kept all 20 clients on one worker that way: 47.0 against
0.6 CPU s). A worker
that holds more than its share (the total over the workers, rounded up) answers that many
responses with ``Connection: close``; the clients open new connections, which the kernel hands to a
listener again (with a new client port, so by a new hash). A response is never cut short:
the connection closes after it. One worker alone (``serve --workers 1``, the tests' apps) has no
siblings and never closes a connection.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: a connection that carried a request this recently counts as active
WINDOW_S = 2.0
#: how often a worker publishes its count and reads its siblings' (about 0.5 ms of CPU each time)
INTERVAL_S = 1.0
#: a sibling's count older than this is a worker that stopped (its file is ignored)
STALE_S = 3.0


def supervised() -> bool:
    """Whether this process is a worker a supervisor started (uvicorn's ``--workers``, with
    multiprocessing): only then do siblings share its listening socket."""
    return multiprocessing.parent_process() is not None


def peers_dir() -> Path:
    """The folder where the workers of one server (one supervisor process, which serves one listening
    socket) publish their counts. Known before the first request, so a worker publishes from its start."""
    parent = multiprocessing.parent_process()
    owner = parent.pid if parent is not None else os.getppid()
    return Path(tempfile.gettempdir()) / f"figsearch-workers-{owner}"


class ConnectionBalance:
    """A worker's count of active connections, its siblings' counts, and how many connections it
    holds beyond its share. ``seen``/``done`` are called on the event loop; ``publish`` from the
    balance thread (or by hand in tests)."""

    def __init__(self, directory: Path | None = None, *, window_s: float = WINDOW_S,
                 interval_s: float = INTERVAL_S, stale_s: float = STALE_S, name: str | None = None) -> None:
        self.directory = directory
        self.window_s = window_s
        self.interval_s = interval_s
        self.stale_s = stale_s
        self.name = name or str(os.getpid())
        self._last: dict[tuple, float] = {}  # connection -> when it last started or ended a request
        self._in_flight: dict[tuple, int] = {}
        #: active connections of this worker, as last counted
        self.mine = 0
        #: connections this worker should still close to come down to its share
        self.excess = 0
        #: connections closed to balance, in all
        self.closed = 0
        #: the workers seen at the last publication (this one included)
        self.workers = 1
        self._counted_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- on the event loop ------------------------------------------------------------------------

    def seen(self, connection: tuple) -> None:
        """A request started on ``connection``."""
        self._last[connection] = time.monotonic()
        self._in_flight[connection] = self._in_flight.get(connection, 0) + 1

    def done(self, connection: tuple, closable: bool = True) -> bool:
        """A response is starting on ``connection`` (``closable``; else the request ended without
        one): whether it should be its connection's last."""
        now = time.monotonic()
        self._last[connection] = now
        left = self._in_flight.get(connection, 1) - 1
        if left > 0:
            self._in_flight[connection] = left
        else:
            self._in_flight.pop(connection, None)
        if now - self._counted_at >= self.interval_s / 2:
            self._count(now)
        with self._lock:
            if self.excess <= 0 or left > 0 or not closable:
                return False
            self.excess -= 1
            self.closed += 1
        self._last.pop(connection, None)
        self.mine = max(0, self.mine - 1)
        return True

    def _count(self, now: float) -> None:
        old = [c for c, at in self._last.items() if now - at > self.window_s and c not in self._in_flight]
        for connection in old:
            del self._last[connection]
        self.mine = len(self._last)
        self._counted_at = now

    # -- the siblings ---------------------------------------------------------------------------

    def publish(self) -> None:
        """Writes this worker's count, reads the siblings', and sets how many connections to close."""
        if self.directory is None:
            return
        directory = str(self.directory)
        os.makedirs(directory, exist_ok=True)
        mine = self.mine
        temporary = os.path.join(directory, f".{self.name}.tmp")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(handle, str(mine).encode())
        finally:
            os.close(handle)
        os.replace(temporary, os.path.join(directory, self.name))  # siblings never read half a count
        counts = []
        now = time.time()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.name == self.name:
                    counts.append(mine)
                    continue
                try:
                    if now - entry.stat().st_mtime > self.stale_s:
                        continue
                    with open(entry.path, "rb") as sibling:
                        counts.append(int(sibling.read() or 0))
                except (OSError, ValueError):
                    continue  # a sibling that is being replaced or has stopped
        self.workers = max(1, len(counts))
        share = math.ceil(sum(counts) / self.workers) if counts else mine
        with self._lock:
            # what is still to close is recomputed from fresh counts each time, never added up
            self.excess = max(0, mine - share) if self.workers > 1 else 0

    def start(self) -> None:
        """Publishes this worker's count now (0 before any request: its siblings count it from the start)
        and then every ``interval_s`` from a thread of its own."""
        if self._thread is not None or self.directory is None:
            return
        try:
            self.publish()
        except OSError as exc:
            log.warning("worker balance not started: %s", exc)
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="figsearch-balance", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from figsearch.server.state import name_native_thread

        name_native_thread("fs-balance")
        while not self._stop.wait(self.interval_s):
            try:
                self.publish()
            except OSError as exc:  # a temporary directory that cannot be written: balance nothing
                log.warning("worker balance stopped: %s", exc)
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self.directory is not None:
            try:
                (self.directory / self.name).unlink(missing_ok=True)
                self.directory.rmdir()  # the last worker out removes the folder
            except OSError:
                pass


class BalanceConnections:
    """ASGI middleware: counts each HTTP request's connection in ``balance`` and adds
    ``Connection: close`` to a response when the worker holds more than its share (the balance's
    thread is started by the app's lifespan)."""

    def __init__(self, app: ASGIApp, balance: ConnectionBalance) -> None:
        self.app = app
        self.balance = balance

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("client"):
            await self.app(scope, receive, send)
            return
        balance = self.balance
        connection = tuple(scope["client"])
        balance.seen(connection)
        ended = False

        async def sending(message: Message) -> None:
            nonlocal ended
            if message["type"] == "http.response.start" and not ended:
                ended = True
                if balance.done(connection):
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if not ended:  # no response (the client left): the request is over all the same
                ended = True
                balance.done(connection, closable=False)
