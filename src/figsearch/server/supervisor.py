"""The supervisor of ``figsearch serve --workers N``: uvicorn's, with each worker on its own listener.

uvicorn's ``Multiprocess`` hands every worker the same list of sockets. figsearch opens one listener
per worker (``SO_REUSEPORT`` on Linux, see ``figsearch.cli.serve_cmd.open_listeners``), so worker
``i`` must get listener ``i`` — when it starts, when it is replaced after dying or hanging, and on a
restart (SIGHUP). Rather than copying uvicorn's supervision loops, each is run for one worker at a
time with that worker's listener: the loops themselves stay uvicorn's.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time

from uvicorn.config import Config
from uvicorn.supervisors import Multiprocess

log = logging.getLogger(__name__)


class ListenerPerWorker(Multiprocess):
    """``Multiprocess`` whose worker ``i`` serves ``listeners[i]`` (one entry per worker; entries may
    be the same socket, which is uvicorn's own behaviour)."""

    def __init__(self, config: Config, listeners: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        if len(listeners) != self.processes_num:
            raise ValueError(f"{self.processes_num} workers need as many listeners, got {len(listeners)}")
        self.listeners = listeners

    def _each_worker(self, step) -> None:
        everyone, count = self.processes, self.processes_num
        try:
            for index, listener in enumerate(self.listeners):
                self.sockets = [listener]
                self.processes = everyone[index:index + 1]
                self.processes_num = 1
                step()
                if index < len(everyone):
                    everyone[index:index + 1] = self.processes  # a replacement takes the worker's place
                else:
                    everyone.extend(self.processes)
        finally:
            self.processes, self.processes_num, self.sockets = everyone, count, []

    def init_processes(self) -> None:
        self._each_worker(super().init_processes)

    def keep_subprocess_alive(self) -> None:
        self._each_worker(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        self._each_worker(super().restart_all)


#: how often a worker looks whether its supervisor is still there
PARENT_CHECK_SECONDS = 1.0


def watch_parent(interval: float = PARENT_CHECK_SECONDS) -> threading.Thread:
    """In a worker process: end it (SIGTERM to itself, so uvicorn shuts it down gracefully) once its parent, the
    supervisor, is gone. A supervisor killed outright (``kill -9``, the OOM killer) never stops its workers: they
    went on serving the port, orphaned, and the next ``figsearch serve`` on it failed with "Address already in
    use". The parent's end shows as a new parent process id (the process is handed to init or a subreaper)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("figsearch serve's supervisor (pid %d) is gone: worker %d stops", parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="figsearch-parent-watch", daemon=True)
    thread.start()
    return thread
