"""The collection store: one directory holds everything about a searchable collection.

Layout::

    COLLECTION/
      figsearch.sqlite      patents, paragraphs, figures, failures, signs, sentences,
                            glossary, stored vectors, models and settings used
      images/PUB/KEY.png    normalised drawing (grey, bounded size)
      thumbs/PUB/KEY.png    thumbnail for display
      index/                FAISS indexes and their manifest (written by figsearch.index)
      .writer.lock          held by the one process allowed to write
      .tmp/                 files being written (renamed into place when complete) and archive
                            scratch; whatever a killed writer left there is removed by the next one

SQLite runs in WAL mode so that searches keep reading the last committed state
while an ingest writes. Stage-specific queries (OCR, linking, embeddings) live
in their stages' modules and use ``Collection.db`` and ``Collection.transaction``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from figsearch.errors import CollectionError, CollectionLocked, NotFound
from figsearch.fsutil import atomic_write_bytes, sha256_bytes, utcnow
from figsearch.records import Classification, Failure, Figure, FigureRole, Paragraph, Patent, Section

log = logging.getLogger(__name__)

DB_NAME = "figsearch.sqlite"
LOCK_NAME = ".writer.lock"
#: scratch space of the writer; only the lock holder uses it, so it empties it on opening
TMP_DIR = ".tmp"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS patents (
    publication_number TEXT PRIMARY KEY,
    office TEXT NOT NULL,
    number TEXT NOT NULL,
    kind TEXT,
    title TEXT,
    publication_date TEXT,
    filing_date TEXT,
    language TEXT,
    abstract TEXT,
    claims_json TEXT NOT NULL DEFAULT '[]',
    source_path TEXT,
    source_format TEXT,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS classifications (
    publication_number TEXT NOT NULL REFERENCES patents ON DELETE CASCADE,
    scheme TEXT NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (publication_number, scheme, code)
);
CREATE TABLE IF NOT EXISTS paragraphs (
    publication_number TEXT NOT NULL REFERENCES patents ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    number TEXT,
    section TEXT NOT NULL,
    heading TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (publication_number, seq)
);
CREATE TABLE IF NOT EXISTS figures (
    figure_id TEXT PRIMARY KEY,
    publication_number TEXT NOT NULL REFERENCES patents ON DELETE CASCADE,
    label TEXT,
    role TEXT NOT NULL,
    sequence INTEGER NOT NULL DEFAULT 0,
    source_file TEXT,
    page INTEGER,
    description TEXT,
    image_path TEXT,
    thumbnail_path TEXT,
    width INTEGER,
    height INTEGER,
    image_sha256 TEXT,
    parent_id TEXT,
    box_json TEXT,
    ocr_done_at TEXT
);
CREATE INDEX IF NOT EXISTS figures_by_patent ON figures (publication_number, sequence);
-- one row per input file (or archive member) so that a rerun skips what is done
CREATE TABLE IF NOT EXISTS sources (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    publications_json TEXT NOT NULL DEFAULT '[]',
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    source TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reference_signs (
    figure_id TEXT NOT NULL REFERENCES figures ON DELETE CASCADE,
    text TEXT NOT NULL,
    kind TEXT NOT NULL,
    x0 INTEGER, y0 INTEGER, x1 INTEGER, y1 INTEGER,
    confidence REAL,
    engine TEXT
);
CREATE INDEX IF NOT EXISTS signs_by_figure ON reference_signs (figure_id);
CREATE TABLE IF NOT EXISTS sentences (
    publication_number TEXT NOT NULL REFERENCES patents ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    paragraph_number TEXT,
    text TEXT NOT NULL,
    PRIMARY KEY (publication_number, idx)
);
CREATE TABLE IF NOT EXISTS figure_sentences (
    figure_id TEXT NOT NULL REFERENCES figures ON DELETE CASCADE,
    publication_number TEXT NOT NULL,
    sentence_idx INTEGER NOT NULL,
    reason TEXT NOT NULL,          -- 'sign', 'brief_description', 'title'
    sign TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (figure_id, sentence_idx, reason, sign)
);
CREATE TABLE IF NOT EXISTS glossary (
    publication_number TEXT NOT NULL REFERENCES patents ON DELETE CASCADE,
    sign TEXT NOT NULL,
    term TEXT NOT NULL,
    sentence_idx INTEGER,
    PRIMARY KEY (publication_number, sign)
);
-- why a figure has no signs or no links ("blank sheet", "image unreadable", "no description")
CREATE TABLE IF NOT EXISTS figure_notes (
    figure_id TEXT NOT NULL REFERENCES figures ON DELETE CASCADE,
    stage TEXT NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (figure_id, stage, note)
);
-- the description text the sentences, glossary and links of a patent were built from
CREATE TABLE IF NOT EXISTS link_state (
    publication_number TEXT PRIMARY KEY REFERENCES patents ON DELETE CASCADE,
    text_sha256 TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
-- vectors are kept so that an index can be rebuilt without running a model again
CREATE TABLE IF NOT EXISTS embeddings (
    figure_id TEXT NOT NULL REFERENCES figures ON DELETE CASCADE,
    modality TEXT NOT NULL,
    encoder TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    input_sha256 TEXT,
    PRIMARY KEY (figure_id, modality, encoder)
);
-- per-encoder scans (what is stored, has it changed) without reading the vectors
CREATE INDEX IF NOT EXISTS embeddings_by_encoder ON embeddings (encoder, modality);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    modality TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
"""


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


class Collection:
    """A collection directory opened for reading, or for writing with the writer lock."""

    def __init__(self, root: Path, db: sqlite3.Connection, lock: WriterLock | None) -> None:
        self.root = root
        self.db = db
        self._lock = lock

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | os.PathLike, *, create: bool = False, write: bool = False) -> Collection:
        """Open ``root``. ``create`` makes it if missing (and implies ``write``)."""
        root = Path(root)
        db_path = root / DB_NAME
        if not db_path.exists():
            if not create:
                raise NotFound(
                    f"no collection at {root} (no {DB_NAME}); build one with: figsearch ingest PATH --collection {root}"
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
            db = cls._connect(db_path, write=write)
        except BaseException:
            if lock:
                lock.release()
            raise
        collection = cls(root, db, lock)
        try:
            if write:
                collection._migrate()
                collection._sweep_temporaries()
            else:
                collection._check_version()
        except BaseException:
            collection.close()  # a refused open must not keep the writer lock
            raise
        return collection

    @staticmethod
    def _connect(db_path: Path, *, write: bool) -> sqlite3.Connection:
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

    def _migrate(self) -> None:
        # every statement is CREATE ... IF NOT EXISTS, so running the script again is harmless; one
        # transaction, so that a full disk or a kill leaves all of the schema and its version or none
        script = (
            "BEGIN IMMEDIATE;\n" + _SCHEMA
            + f"\nINSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
            + f"\nINSERT OR IGNORE INTO meta VALUES ('created_at', '{utcnow()}');\nCOMMIT;"
        )
        try:
            try:
                self.db.executescript(script)
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError as exc:
            raise CollectionError(f"cannot write to collection {self.root}: {exc}") from exc
        if int(row[0]) > SCHEMA_VERSION:
            raise CollectionError(
                f"collection {self.root} has schema version {row[0]}, newer than this figsearch "
                f"({SCHEMA_VERSION}); upgrade figsearch"
            )

    def _sweep_temporaries(self) -> None:
        """Remove what a killed writer left in the scratch folder (we hold the lock: nobody else uses it)."""
        scratch = self.root / TMP_DIR
        if scratch.is_dir():
            log.info("removing temporary files left by an interrupted run in %s", scratch)
            shutil.rmtree(scratch, ignore_errors=True)

    def _check_version(self) -> None:
        try:
            tables = self.db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables == 0:
                raise CollectionError(
                    f"collection {self.root} is empty: its creation did not finish (interrupted, or the disk was "
                    f"full); run figsearch ingest on it again"
                )
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise CollectionError(f"{self.root / DB_NAME} is not a figsearch collection database: {exc}") from exc
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise CollectionError(f"collection {self.root} has an unknown schema version; upgrade figsearch")

    def close(self) -> None:
        self.db.close()
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
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- settings --------------------------------------------------------------------------

    def get_setting(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (f"setting:{key}",)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting:{key}", json.dumps(value, sort_keys=True))
            )

    def register_model(self, name: str, modality: str, settings: dict) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
                (name, modality, json.dumps(settings, sort_keys=True), utcnow()),
            )

    # -- files -----------------------------------------------------------------------------

    def path(self, relative: str) -> Path:
        """Resolve a stored relative path, refusing anything that leaves the collection."""
        resolved = (self.root / relative).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise NotFound(f"path {relative!r} is outside the collection")
        return resolved

    def save_png(self, folder: str, patent: str, key: str, image) -> tuple[str, str]:
        """Store a PIL image as PNG under ``folder/PATENT/KEY.png``; returns (relative path, sha256)."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=False)
        data = buffer.getvalue()
        relative = png_relpath(folder, patent, key)
        atomic_write_bytes(self.root / relative, data, tmp_dir=self.root / TMP_DIR)
        return relative, sha256_bytes(data)

    # -- sources and failures ----------------------------------------------------------------

    def source_sha256(self, source: str) -> str | None:
        row = self.db.execute("SELECT sha256 FROM sources WHERE source=?", (source,)).fetchone()
        return row[0] if row else None

    def mark_source_done(self, source: str, sha256: str, publications: list[str]) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)",
                (source, sha256, json.dumps(publications), utcnow()),
            )
            self.db.execute("DELETE FROM failures WHERE source=?", (source,))

    def record_failure(self, failure: Failure) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (failure.source, failure.reason, utcnow()))

    def failures(self) -> list[Failure]:
        return [Failure(r["source"], r["reason"]) for r in self.db.execute("SELECT * FROM failures ORDER BY source")]

    # -- patents and figures -----------------------------------------------------------------

    def upsert_patent(self, patent: Patent, figures: list[Figure]) -> None:
        """Insert or replace a patent with its text and figures, in one transaction.

        Figures whose stored image is unchanged keep their derived data (signs, vectors);
        figures no longer present are deleted with everything derived from them.
        """
        pub = patent.publication_number
        with self.transaction() as db:
            rows = db.execute(
                "SELECT figure_id, image_sha256, parent_id FROM figures WHERE publication_number=?", (pub,)
            ).fetchall()
            # figures cut from a sheet later (by OCR) are not in an ingest's list: they belong to their sheet
            old = {r["figure_id"]: r["image_sha256"] for r in rows if r["parent_id"] is None}
            db.execute(
                """INSERT INTO patents (publication_number, office, number, kind, title, publication_date,
                       filing_date, language, abstract, claims_json, source_path, source_format, ingested_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(publication_number) DO UPDATE SET
                       office=excluded.office, number=excluded.number, kind=excluded.kind, title=excluded.title,
                       publication_date=excluded.publication_date, filing_date=excluded.filing_date,
                       language=excluded.language, abstract=excluded.abstract, claims_json=excluded.claims_json,
                       source_path=excluded.source_path, source_format=excluded.source_format,
                       ingested_at=excluded.ingested_at""",
                (
                    pub, patent.office, patent.number, patent.kind, patent.title, patent.publication_date,
                    patent.filing_date, patent.language, patent.abstract, json.dumps(patent.claims),
                    patent.source_path, patent.source_format, utcnow(),
                ),
            )
            db.execute("DELETE FROM classifications WHERE publication_number=?", (pub,))
            db.executemany(
                "INSERT OR IGNORE INTO classifications VALUES (?,?,?)",
                [(pub, c.scheme, c.code) for c in patent.classifications],
            )
            db.execute("DELETE FROM paragraphs WHERE publication_number=?", (pub,))
            db.executemany(
                "INSERT INTO paragraphs VALUES (?,?,?,?,?,?)",
                [(pub, i, p.number, p.section.value, p.heading, p.text) for i, p in enumerate(patent.paragraphs)],
            )
            new_ids = {f.figure_id for f in figures}
            stale = set(old) - new_ids
            stale |= {f.figure_id for f in figures if f.figure_id in old and old[f.figure_id] != f.image_sha256}
            for sheet in stale:
                # the image changed or vanished: what was derived from it (cut figures included) is stale
                db.execute("DELETE FROM figures WHERE parent_id=?", (sheet,))
                db.execute("DELETE FROM figures WHERE figure_id=?", (sheet,))
            for figure in figures:
                sha = figure.image_sha256
                db.execute(
                    """INSERT INTO figures (figure_id, publication_number, label, role, sequence, source_file,
                           page, description, image_path, thumbnail_path, width, height, image_sha256,
                           parent_id, box_json)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                       ON CONFLICT(figure_id) DO UPDATE SET
                           label=COALESCE(excluded.label, figures.label),
                           role=CASE WHEN figures.role='split_sheet' AND excluded.role='drawing'
                                     THEN figures.role ELSE excluded.role END,
                           sequence=excluded.sequence, source_file=excluded.source_file, page=excluded.page,
                           description=COALESCE(excluded.description, figures.description),
                           image_path=excluded.image_path, thumbnail_path=excluded.thumbnail_path,
                           width=excluded.width, height=excluded.height, parent_id=excluded.parent_id,
                           box_json=excluded.box_json""",
                    (
                        figure.figure_id, pub, figure.label, figure.role.value, figure.sequence, figure.source_file,
                        figure.page, figure.description, figure.image_path, figure.thumbnail_path, figure.width,
                        figure.height, sha, figure.parent_id, json.dumps(figure.box) if figure.box else None,
                    ),
                )

    def patent(self, publication_number: str) -> Patent:
        row = self.db.execute("SELECT * FROM patents WHERE publication_number=?", (publication_number,)).fetchone()
        if row is None:
            raise NotFound(f"unknown patent {publication_number!r} in collection {self.root}")
        pub = row["publication_number"]
        return Patent(
            publication_number=pub,
            office=row["office"],
            number=row["number"],
            kind=row["kind"],
            title=row["title"],
            publication_date=row["publication_date"],
            filing_date=row["filing_date"],
            language=row["language"],
            abstract=row["abstract"],
            claims=json.loads(row["claims_json"]),
            source_path=row["source_path"],
            source_format=row["source_format"],
            classifications=[
                Classification(r["scheme"], r["code"])
                for r in self.db.execute(
                    "SELECT scheme, code FROM classifications WHERE publication_number=? ORDER BY scheme, code", (pub,)
                )
            ],
            paragraphs=[
                Paragraph(text=r["text"], number=r["number"], section=Section(r["section"]), heading=r["heading"])
                for r in self.db.execute("SELECT * FROM paragraphs WHERE publication_number=? ORDER BY seq", (pub,))
            ],
        )

    def figure(self, figure_id: str) -> Figure:
        row = self.db.execute("SELECT * FROM figures WHERE figure_id=?", (figure_id,)).fetchone()
        if row is None:
            raise NotFound(f"unknown figure id {figure_id!r} in collection {self.root}")
        return _figure_from_row(row)

    def figures(self, *, patent: str | None = None, roles: tuple[FigureRole, ...] | None = None) -> list[Figure]:
        sql = "SELECT * FROM figures"
        clauses, args = [], []
        if patent is not None:
            clauses.append("publication_number=?")
            args.append(patent)
        if roles is not None:
            clauses.append(f"role IN ({','.join('?' * len(roles))})")
            args.extend(r.value for r in roles)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY publication_number, sequence, figure_id"
        return [_figure_from_row(r) for r in self.db.execute(sql, args)]

    def patent_numbers(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT publication_number FROM patents ORDER BY publication_number")]

    def counts(self) -> dict:
        def scalar(sql: str, *args) -> int:
            return self.db.execute(sql, args).fetchone()[0]

        formats = {
            r[0] or "unknown": r[1]
            for r in self.db.execute("SELECT source_format, COUNT(*) FROM patents GROUP BY source_format")
        }
        roles = {r[0]: r[1] for r in self.db.execute("SELECT role, COUNT(*) FROM figures GROUP BY role")}
        return {
            "collection": str(self.root),
            "patents": scalar("SELECT COUNT(*) FROM patents"),
            "figures": scalar("SELECT COUNT(*) FROM figures"),
            "figures_by_role": roles,
            "paragraphs": scalar("SELECT COUNT(*) FROM paragraphs"),
            "formats": formats,
            "failures": scalar("SELECT COUNT(*) FROM failures"),
        }


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


def _figure_from_row(row: sqlite3.Row) -> Figure:
    return Figure(
        figure_id=row["figure_id"],
        patent=row["publication_number"],
        label=row["label"],
        role=FigureRole(row["role"]),
        source_file=row["source_file"],
        page=row["page"],
        description=row["description"],
        sequence=row["sequence"],
        image_path=row["image_path"],
        thumbnail_path=row["thumbnail_path"],
        width=row["width"],
        height=row["height"],
        parent_id=row["parent_id"],
        image_sha256=row["image_sha256"],
        box=tuple(json.loads(row["box_json"])) if row["box_json"] else None,
    )


def png_relpath(folder: str, patent: str, key: str) -> str:
    """Where ``save_png`` puts an image, relative to the collection (ingest workers write there too)."""
    return f"{folder}/{_safe_name(patent)}/{_safe_name(key)}.png"


def _safe_name(name: str) -> str:
    """A file-name-safe form of a patent number or figure key (never a path separator)."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "_"
