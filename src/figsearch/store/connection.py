"""Opening the collection database, and the one-writer lock.

SQLite runs in WAL mode so that readers keep seeing the last committed state while a writer
works. A writer has one connection; a reader opens one read-only connection per thread (see
``Collection.db``), so that several searches can run at once without sharing a cursor.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sqlite3
from pathlib import Path

from figsearch.errors import CollectionError, CollectionLocked

log = logging.getLogger(__name__)

LOCK_NAME = ".writer.lock"


class WriterLock:
    """An exclusive, non-blocking lock on the collection, released when the process dies."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_NAME
        self._handle = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise CollectionLocked(
                    f"collection {self.path.parent} is being written by {holder}; "
                    "wait for it to finish (searches keep working meanwhile)"
                ) from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def connect(db_path: Path, *, write: bool) -> sqlite3.Connection:
    try:
        if write:
            db = sqlite3.connect(db_path, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
        else:
            db = _connect_read_only(db_path)
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        db.row_factory = sqlite3.Row
    except sqlite3.Error as exc:
        raise CollectionError(f"cannot open collection database {db_path}: {exc}") from exc
    return db


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    """A read-only connection, also to a collection on a read-only file system.

    SQLite opens a WAL database only if it can create the ``-shm`` file beside it; where nothing
    can be created (a read-only mount) and no ``-wal`` holds uncheckpointed commits, the file
    cannot change under us, so it is opened as immutable.
    """
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30, check_same_thread=False,
                         isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        wal = db_path.with_name(db_path.name + "-wal")
        if os.access(db_path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
            raise
        db.close()
    log.info("%s is on a read-only file system; opened as immutable", db_path)
    return sqlite3.connect(f"file:{db_path}?mode=ro&immutable=1", uri=True, check_same_thread=False,
                           isolation_level=None)
