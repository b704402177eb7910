"""Comparing and checking collections, for the kill test and the reliability tests.

``snapshot`` reduces a collection to what a user could lose: the rows of every table
(without timestamps) and the bytes of every stored image. Two snapshots of collections
built from the same input must be equal, whatever happened in between (kills, reruns).
``check_consistent`` is what must hold after any crash: the database passes SQLite's
integrity check, opens read-only, and every row points at something that exists.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

#: columns that record when something happened, not what: they differ between any two runs
_TIMES = {"ingested_at", "at", "registered_at", "ocr_done_at", "linked_at"}
#: meta rows that differ between runs by design; the embeddings' rowid counter counts every vector saved, and a
#: build that stores a vector once (the overlapped build's stream, a cut figure's mixed vector) ends lower than
#: one that stores it twice (plain, then mixed): the embeddings are compared by their vectors, not their rowids
_META_SKIP = {"created_at", "setting:embeddings_rowid_seq"}


@dataclass
class Snapshot:
    tables: dict[str, dict[tuple, tuple]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def counts(self) -> dict[str, int]:
        out = {name: len(rows) for name, rows in sorted(self.tables.items())}
        out["stored files"] = len(self.files)
        return out


def _keys(db: sqlite3.Connection, table: str) -> list[str]:
    """Primary-key columns of ``table`` (all columns when it has none)."""
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    keyed = sorted((row[5], row[1]) for row in info if row[5])
    return [name for _, name in keyed] or [row[1] for row in info]


def snapshot(root: Path) -> Snapshot:
    """Every row (minus timestamps) and every file under images/ and thumbs/ of a collection."""
    root = Path(root)
    db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
    try:
        snap = Snapshot()
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for table in tables:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})") if r[1] not in _TIMES]
            keys = _keys(db, table)
            rows: dict[tuple, tuple] = {}
            for row in db.execute(f"SELECT {', '.join(columns)} FROM {table}"):
                record = dict(zip(columns, row))
                if table == "meta" and record.get("key") in _META_SKIP:
                    continue
                key = tuple(record[k] for k in keys if k in record)
                if key in rows:  # a duplicate primary key would be a broken database
                    key = key + (f"#dup{len(rows)}",)
                rows[key] = tuple(record.values())
            snap.tables[table] = rows
    finally:
        db.close()
    for folder in ("images", "thumbs"):
        base = root / folder
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    snap.files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


@dataclass
class Difference:
    lost: dict[str, int] = field(default_factory=dict)      # in the reference, missing here
    extra: dict[str, int] = field(default_factory=dict)     # here, not in the reference (duplicates, leftovers)
    changed: dict[str, int] = field(default_factory=dict)   # same key, other content
    examples: list[str] = field(default_factory=list)

    @property
    def records_lost(self) -> int:
        return sum(self.lost.values()) + sum(self.changed.values())

    @property
    def equal(self) -> bool:
        return not (self.lost or self.extra or self.changed)

    def __str__(self) -> str:
        if self.equal:
            return "identical"
        return (f"lost {self.lost}, extra {self.extra}, changed {self.changed}; e.g. "
                + "; ".join(self.examples[:5]))


def compare(reference: Snapshot, other: Snapshot) -> Difference:
    diff = Difference()

    def note(kind: dict, name: str, example: str) -> None:
        kind[name] = kind.get(name, 0) + 1
        if len(diff.examples) < 20:
            diff.examples.append(example)

    for table in sorted(set(reference.tables) | set(other.tables)):
        ref, got = reference.tables.get(table, {}), other.tables.get(table, {})
        for key in ref.keys() - got.keys():
            note(diff.lost, table, f"{table} {key} missing")
        for key in got.keys() - ref.keys():
            note(diff.extra, table, f"{table} {key} extra")
        for key in ref.keys() & got.keys():
            if ref[key] != got[key]:
                note(diff.changed, table, f"{table} {key}: {ref[key]} != {got[key]}")
    for path in reference.files.keys() - other.files.keys():
        note(diff.lost, "files", f"file {path} missing")
    for path in other.files.keys() - reference.files.keys():
        note(diff.extra, "files", f"file {path} extra")
    for path in reference.files.keys() & other.files.keys():
        if reference.files[path] != other.files[path]:
            note(diff.changed, "files", f"file {path} differs")
    return diff


def check_consistent(root: Path) -> list[str]:
    """Problems of a collection that may have just been killed; empty when it is consistent.

    Run only while no writer is active (a writer may hold images it has not committed yet).
    """
    root = Path(root)
    problems: list[str] = []
    # read-only, as `figsearch info` and searches open it
    db = sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True)
    try:
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            problems.append(f"integrity_check: {verdict}")
        for row in db.execute("PRAGMA foreign_key_check"):
            problems.append(f"foreign key broken: {tuple(row)}")
            break
        for figure_id, image_path, thumb_path, sha in db.execute(
                "SELECT figure_id, image_path, thumbnail_path, image_sha256 FROM figures"):
            for relative in (image_path, thumb_path):
                if relative and not (root / relative).is_file():
                    problems.append(f"figure {figure_id}: stored file {relative} missing")
            if image_path and sha and (root / image_path).is_file():
                if hashlib.sha256((root / image_path).read_bytes()).hexdigest() != sha:
                    problems.append(f"figure {figure_id}: {image_path} does not match its recorded sha256")
        patents = {r[0] for r in db.execute("SELECT publication_number FROM patents")}
        for source, publications in db.execute("SELECT source, publications_json FROM sources"):
            missing = set(json.loads(publications)) - patents
            if missing:
                problems.append(f"source {source} marked done but its patents {sorted(missing)} are absent")
        dup = db.execute("SELECT figure_id, COUNT(*) FROM figures GROUP BY figure_id HAVING COUNT(*) > 1").fetchone()
        if dup:
            problems.append(f"duplicate figure {dup[0]}")
    finally:
        db.close()
    return problems


def leftovers(root: Path) -> list[str]:
    """Temporary files or folders a writer left behind (must be none after a completed run)."""
    root = Path(root)
    found = []
    for path in root.rglob("*"):
        name = path.name
        if name.endswith(".tmp") or name == ".ingest-tmp" or name.startswith("unpack-"):
            found.append(path.relative_to(root).as_posix())
    return sorted(found)
