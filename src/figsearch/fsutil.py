"""Small file, time and process helpers that every stage uses (no figsearch imports: a leaf module)."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hashlib
import os
import sys
from pathlib import Path


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: False within ``scratch_writes``: the files written are read back and deleted, so none need to survive a power cut
_DURABLE: contextvars.ContextVar[bool] = contextvars.ContextVar("figsearch_durable_writes", default=True)


@contextlib.contextmanager
def scratch_writes():
    """Within (this thread or task only), ``atomic_write_bytes`` and ``fsync_directories`` skip their
    ``fsync``s: for files written into a scratch folder that is read back and deleted, whose durability
    is the final writer's (a Ray worker's ingest: the driver stores the same bytes, durably). Each fsync
    is a wait for the disk with the core idle (about 0.6 s per worker of a 2-worker Ray build of 21
    documents on the development machine: docs/cluster.md, "Stop 30")."""
    token = _DURABLE.set(False)
    try:
        yield
    finally:
        _DURABLE.reset(token)


def atomic_write_bytes(path: Path, data: bytes, *, tmp_dir: Path | None = None) -> None:
    """Write to a temporary name and rename, so a crash never leaves half a file.

    ``tmp_dir`` (on the same file system) holds the temporary file instead of ``path``'s folder,
    so that a killed writer's leftovers are found in one place, not all over a collection.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = (tmp_dir or path.parent) / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            if _DURABLE.get():
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def fsync_directories(paths) -> None:
    """Make renames into these folders durable (a power cut must not undo them after a commit)."""
    if not _DURABLE.get():
        return
    for folder in paths:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def name_native_thread(name: str) -> None:
    """Names the calling thread for the kernel (Linux, 15 bytes at most), so that ``top -H``,
    ``py-spy`` and ``/proc/PID/task/*/comm`` tell the server's threads (and a build's worker processes)
    apart; threads a library starts from it (onnxruntime's, OpenMP's) inherit the name. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15] + b"\0", 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def exit_with_parent() -> None:
    """In a multiprocessing worker: a daemon thread that ends the process when its parent is gone (killed
    alone, its pool's workers would wait on their task queue forever). It notices by the end of the pipe the
    parent started the worker through (multiprocessing's parent sentinel, spawned or forked by a
    forkserver), not by being re-parented: a forkserver's child is the server's, and the server lives as
    long as any of its children does (each holds the server's "alive" pipe). Elsewhere a no-op."""
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns once the parent's end of that pipe is closed: it has exited
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
