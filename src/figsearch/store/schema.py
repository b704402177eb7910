"""The collection's schema, with its version and the migrations that reach it.

The version lives in the ``meta`` table (``schema_version``), as it did before migrations
existed, so a collection made by any release can say what it holds. ``BASELINE`` is the schema
of version 1, word for word as the first release wrote it; every later change is a step in
``MIGRATIONS``. A new collection is made exactly as an old one is upgraded: the baseline, then
each step in order, all in one transaction with the version bump, so that a kill or a full disk
leaves the old version or the new one, never half of a step.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from figsearch.errors import CollectionError
from figsearch.fsutil import utcnow

log = logging.getLogger(__name__)

#: version 1: the first release's schema (never edit it: old collections hold exactly this)
BASELINE = """
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

#: version -> the statements that take a collection from version - 1 to it, in order
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # the language of a patent's text and of each paragraph (ISO 639-1), NULL where unknown
    2: (
        "ALTER TABLE patents ADD COLUMN lang TEXT",
        "ALTER TABLE paragraphs ADD COLUMN lang TEXT",
    ),
    # drawing words: the words printed in each drawing (box labels, flowchart steps), as OCR read them
    3: (
        """CREATE TABLE IF NOT EXISTS figure_words (
            figure_id TEXT NOT NULL REFERENCES figures ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            line INTEGER NOT NULL DEFAULT 0,
            x0 INTEGER, y0 INTEGER, x1 INTEGER, y1 INTEGER,
            confidence REAL,
            PRIMARY KEY (figure_id, seq)
        )""",
    ),
    # the figures by their stored PNG's digest: an upload that is a stored image (a front page, which the visual
    # index does not hold) is found by it (search.service.near_copy) without reading the whole table
    4: (
        "CREATE INDEX IF NOT EXISTS figures_by_image ON figures (image_sha256)",
    ),
    # the application a publication belongs to: leaving out the query's patent leaves out the same application's
    # other publications too (a US application and its grant have different numbers)
    5: (
        "ALTER TABLE patents ADD COLUMN application_number TEXT",
        "CREATE INDEX IF NOT EXISTS patents_by_application ON patents (application_number)",
    ),
}

SCHEMA_VERSION = max(MIGRATIONS, default=1)

#: version -> what its step brings, in a user's words (``figsearch info`` names what an older collection lacks)
STEP_SUMMARY: dict[int, str] = {
    2: "the language of each document and paragraph",
    3: "the words printed in drawings",
    4: "uploaded front pages found by their stored image",
    5: "the application of each publication, so that leaving out the query's patent leaves out its application's "
       "other publications (documents read before keep none until they are read again)",
}
#: ``meta`` keys: the version a collection had when a writer first upgraded it, and when (absent for one made at
#: the current version, or upgraded before stop 28): what it was made without stays known after the upgrade
UPGRADED_FROM = "upgraded_from"
UPGRADED_AT = "upgraded_at"


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (none of ours has a ';' inside a string or comment)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def stored_version(db: sqlite3.Connection) -> int | None:
    """The collection's schema version; None for a database that has no ``meta`` table yet."""
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    if not has_meta:
        return None
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def _too_new(root: Path, version: int) -> CollectionError:
    return CollectionError(
        f"collection {root} has schema version {version}, newer than this figsearch knows "
        f"({SCHEMA_VERSION}); upgrade figsearch"
    )


def migrate(db: sqlite3.Connection, root: Path) -> tuple[int | None, int]:
    """Bring the schema to SCHEMA_VERSION in one transaction; returns (version found, version now)."""
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            found = stored_version(db)
            if found is not None and found > SCHEMA_VERSION:
                raise _too_new(root, found)
            version = found or 0
            if version == 0:
                for statement in _statements(BASELINE):
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (utcnow(),))
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    db.execute(statement)
                version = step
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(version),))
            if found is not None and found < version:
                if db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (UPGRADED_FROM, str(found))).rowcount:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (UPGRADED_AT, utcnow()))
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise CollectionError(f"cannot write to collection {root}: {exc}") from exc
    if found is not None and found < SCHEMA_VERSION:
        log.info("collection %s upgraded from schema version %d to %d", root, found, SCHEMA_VERSION)
    return found, version


def first_upgrade(db: sqlite3.Connection) -> tuple[int, str] | None:
    """(the version, when) of the collection's first upgrade by a writer that records it; None if not known."""
    rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN (?, ?)", (UPGRADED_FROM, UPGRADED_AT)).fetchall())
    if UPGRADED_FROM not in rows or UPGRADED_AT not in rows:
        return None
    return int(rows[UPGRADED_FROM]), rows[UPGRADED_AT]


def check_version(db: sqlite3.Connection, root: Path, db_name: str) -> int:
    """For a reader: the collection's version, or a clear error when it is empty, foreign or too new.

    An older version is read as it is (readers never write; what it lacks reads as unknown);
    the next writer upgrades it.
    """
    try:
        tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if tables == 0:
            raise CollectionError(
                f"collection {root} is empty: its creation did not finish (interrupted, or the disk was "
                f"full); run figsearch ingest on it again"
            )
        version = stored_version(db)
    except sqlite3.DatabaseError as exc:
        raise CollectionError(f"{root / db_name} is not a figsearch collection database: {exc}") from exc
    if version is None:
        raise CollectionError(f"collection {root} has an unknown schema version; upgrade figsearch")
    if version > SCHEMA_VERSION:
        raise _too_new(root, version)
    return version
