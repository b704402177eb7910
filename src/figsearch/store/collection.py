"""A collection directory opened for reading, or for writing with the writer lock.

``Collection`` holds the connection(s), the lock and the transaction; the tables are reached
through one repository per table group (``patents``, ``ledger``, ``settings``, ``models``,
``signs``, ``links``, ``vectors``, ``words``, ``lexical``) and the files through ``files``. A reader opens one
read-only SQLite connection per thread, so one open collection can serve several searches at
once; a writer has one connection (the writer lock makes it the only one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CollectionError, NotFound
from figsearch.records import Failure, Figure, FigureRole, Patent
from figsearch.store.connection import WriterLock, connect
from figsearch.store.files import TMP_DIR, FileStore
from figsearch.store.ledger import Ledger
from figsearch.store.lexical import LexicalRepository
from figsearch.store.links import LinkRepository
from figsearch.store.patents import PatentRepository
from figsearch.store.schema import check_version, migrate
from figsearch.store.settings import ModelRegistry, Settings
from figsearch.store.signs import SignRepository
from figsearch.store.vectors import VectorRepository
from figsearch.store.words import WordRepository

log = logging.getLogger(__name__)

DB_NAME = "figsearch.sqlite"


class Collection:
    """The collection directory: SQLite database, image files, indexes (see figsearch.index)."""

    def __init__(self, root: Path, db: sqlite3.Connection, lock: WriterLock | None) -> None:
        self.root = root
        self._lock = lock
        self._db_path = root / DB_NAME
        self._local = threading.local()
        self._local.db = db
        self._connections = [db]
        self._connections_lock = threading.Lock()
        self._closed = False
        self.schema_version: int | None = None
        self.files = FileStore(root)
        self.patents = PatentRepository(self)
        self.ledger = Ledger(self)
        self.settings = Settings(self)
        self.models = ModelRegistry(self)
        self.signs = SignRepository(self)
        self.links = LinkRepository(self)
        self.vectors = VectorRepository(self)
        self.words = WordRepository(self)
        self.lexical = LexicalRepository(self)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike, *, create: bool = False, write: bool = False) -> Collection:
        """Open ``root``. ``create`` makes it if missing (and implies ``write``).

        Opening for writing upgrades an older schema (one transaction); a reader reads it as it is.
        """
        root = Path(root)
        db_path = root / DB_NAME
        if not db_path.exists():
            if not create:
                raise NotFound(
                    f"no collection at {root} (no {DB_NAME}); build one with: figsearch build PATH --collection {root}"
                )
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CollectionError(f"cannot create collection directory {root}: {exc.strerror}") from exc
        write = write or create
        lock = None
        if write:
            lock = WriterLock(root)
            try:
                lock.acquire()
            except OSError as exc:
                raise CollectionError(f"cannot write to collection {root}: {exc.strerror or exc}") from exc
        try:
            db = connect(db_path, write=write)
        except BaseException:
            if lock:
                lock.release()
            raise
        collection = cls(root, db, lock)
        try:
            if write:
                _, collection.schema_version = migrate(db, root)
                collection._sweep_temporaries()
            else:
                collection.schema_version = check_version(db, root, DB_NAME)
        except BaseException:
            collection.close()  # a refused open must not keep the writer lock
            raise
        return collection

    def _sweep_temporaries(self) -> None:
        """Remove what a killed writer left in the scratch folder (we hold the lock: nobody else uses it)."""
        scratch = self.root / TMP_DIR
        if scratch.is_dir():
            log.info("removing temporary files left by an interrupted run in %s", scratch)
            shutil.rmtree(scratch, ignore_errors=True)

    def ping(self, busy_timeout_ms: int) -> None:
        """Check that this thread's connection can read the database, waiting at most
        ``busy_timeout_ms`` for a lock (a health check must answer fast, never queue)."""
        try:
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self.db.execute("SELECT 1 FROM meta LIMIT 1").fetchone()
        except sqlite3.OperationalError as exc:
            raise CollectionError(f"the collection's database does not answer: {exc}") from None

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection: the writer's one, or a reader's own read-only one."""
        db = getattr(self._local, "db", None)
        if db is not None:
            return db
        if self._lock is not None:
            return self._connections[0]  # one writer connection, used under the writer's own discipline
        if self._closed:
            raise CollectionError(f"collection {self.root} is closed")
        db = connect(self._db_path, write=False)
        with self._connections_lock:
            self._connections.append(db)
        self._local.db = db
        return db

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, self._connections[:1]
        for db in connections:
            db.close()
        if self._lock:
            with contextlib.suppress(OSError):
                (self.root / TMP_DIR).rmdir()  # only when empty: a clean run leaves no scratch folder
            self._lock.release()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def writable(self) -> bool:
        return self._lock is not None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (nesting joins the outer one)."""
        db = self.db
        if db.in_transaction:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- the everyday calls, kept on the collection itself ------------------------------------

    def get_setting(self, key: str, default=None):
        return self.settings.get(key, default)

    def set_setting(self, key: str, value) -> None:
        self.settings.set(key, value)

    def register_model(self, name: str, modality: str, settings: dict) -> None:
        self.models.register(name, modality, settings)

    def path(self, relative: str) -> Path:
        return self.files.path(relative)

    def save_png(self, folder: str, patent: str, key: str, image) -> tuple[str, str]:
        return self.files.save_png(folder, patent, key, image)

    def source_sha256(self, source: str) -> str | None:
        return self.ledger.source_sha256(source)

    def mark_source_done(self, source: str, sha256: str, publications: list[str]) -> None:
        self.ledger.mark_source_done(source, sha256, publications)

    def record_failure(self, failure: Failure) -> None:
        self.ledger.record_failure(failure)

    def failures(self) -> list[Failure]:
        return self.ledger.failures()

    def upsert_patent(self, patent: Patent, figures: list[Figure]) -> list[str]:
        return self.patents.upsert(patent, figures)

    def patent(self, publication_number: str) -> Patent:
        return self.patents.get(publication_number)

    def figure(self, figure_id: str) -> Figure:
        return self.patents.figure(figure_id)

    def figures(self, *, patent: str | None = None, roles: tuple[FigureRole, ...] | None = None) -> list[Figure]:
        return self.patents.figures(patent=patent, roles=roles)

    def patent_numbers(self) -> list[str]:
        return self.patents.numbers()

    def counts(self) -> dict:
        return self.patents.counts(self.root)
