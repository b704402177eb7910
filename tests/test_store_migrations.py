"""Schema versions: a collection made by the first release (schema 1) opens, upgrades and keeps its data."""

from __future__ import annotations

import sqlite3

import pytest

from figsearch.errors import CollectionError
from figsearch.records import DrawingWord, Paragraph, Patent, Section
from figsearch.store import DB_NAME, SCHEMA_VERSION, Collection
from figsearch.store.schema import BASELINE, MIGRATIONS

#: the schema as figsearch 0.1 (``store.py`` before versions had steps) wrote it, copied verbatim:
#: it must never follow later edits of the code, or this test would prove nothing
RELEASE_1_SCHEMA = """
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


def _release_1_collection(root) -> None:
    """A collection as the first release left it: its DDL, its meta rows, a patent with text, figures, signs, vectors."""
    root.mkdir(parents=True)
    db = sqlite3.connect(root / DB_NAME, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(
        "BEGIN IMMEDIATE;\n" + RELEASE_1_SCHEMA
        + "\nINSERT OR IGNORE INTO meta VALUES ('schema_version', '1');"
        + "\nINSERT OR IGNORE INTO meta VALUES ('created_at', '2026-01-01T00:00:00Z');\nCOMMIT;"
    )
    db.execute(
        "INSERT INTO patents (publication_number, office, number, kind, title, language, claims_json, source_path, "
        "source_format, ingested_at) VALUES ('EP1A1', 'EP', '1', 'A1', 'Rotor', 'en', '[\"a claim\"]', 'x.xml', "
        "'ep-xml', '2026-01-01T00:00:00Z')"
    )
    db.execute("INSERT INTO classifications VALUES ('EP1A1', 'IPC', 'F03D 1/06')")
    db.execute("INSERT INTO paragraphs VALUES ('EP1A1', 0, '0001', 'description', NULL, 'The rotor 12 turns.')")
    db.execute("INSERT INTO figures (figure_id, publication_number, label, role, sequence, image_sha256, ocr_done_at) "
               "VALUES ('EP1A1-f1', 'EP1A1', 'FIG. 1', 'drawing', 1, 'abc', '2026-01-01T00:00:00Z')")
    db.execute("INSERT INTO reference_signs (figure_id, text, kind) VALUES ('EP1A1-f1', '12', 'numeral')")
    db.execute("INSERT INTO embeddings VALUES ('EP1A1-f1', 'visual', 'k', 2, x'0000803f00000000', 'abc')")
    db.execute("INSERT INTO meta VALUES ('setting:visual_encoder', '{\"spec\": \"fake\"}')")
    db.close()


def _columns(root, table: str) -> list[str]:
    db = sqlite3.connect(root / DB_NAME)
    try:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def test_the_baseline_is_the_first_release_schema():
    assert BASELINE == RELEASE_1_SCHEMA
    assert SCHEMA_VERSION == max(MIGRATIONS) >= 2


def test_a_release_1_collection_upgrades_with_its_data(tmp_path):
    root = tmp_path / "c"
    _release_1_collection(root)
    with Collection.open(root) as reader:  # a reader does not upgrade; what the old schema lacks is unknown
        assert reader.schema_version == 1
        patent = reader.patent("EP1A1")
        assert patent.lang is None and patent.paragraphs[0].lang is None
    assert "lang" not in _columns(root, "patents")
    with Collection.open(root, write=True) as c:
        assert c.schema_version == SCHEMA_VERSION
        assert c.settings.meta("schema_version") == str(SCHEMA_VERSION)
        assert c.settings.meta("created_at") == "2026-01-01T00:00:00Z"
        patent = c.patent("EP1A1")
        assert (patent.title, patent.claims, patent.source_format) == ("Rotor", ["a claim"], "ep-xml")
        assert [(p.number, p.text, p.section, p.lang) for p in patent.paragraphs] == [
            ("0001", "The rotor 12 turns.", Section.DESCRIPTION, None)]
        assert [x.code for x in patent.classifications] == ["F03D 1/06"]
        assert c.figure("EP1A1-f1").label == "FIG. 1"
        assert [s.text for s in c.signs.of("EP1A1-f1")] == ["12"]
        assert c.vectors.fetch("visual", "k", ["EP1A1-f1"])["EP1A1-f1"].tolist() == [1.0, 0.0]
        assert c.get_setting("visual_encoder") == {"spec": "fake"}
        assert c.signs.pending() == []  # what was read stays read
        # the new columns are written and read back
        patent.lang = "de"
        patent.paragraphs[0].lang = "de"
        patent.paragraphs.append(Paragraph("Der Rotor.", number="0002", lang="de"))
        c.upsert_patent(patent, [c.figure("EP1A1-f1")])
        again = c.patent("EP1A1")
        assert again.lang == "de" and [p.lang for p in again.paragraphs] == ["de", "de"]
        assert [s.text for s in c.signs.of("EP1A1-f1")] == ["12"]  # same image: derived rows kept
    assert "lang" in _columns(root, "patents") and "lang" in _columns(root, "paragraphs")
    with Collection.open(root, write=True) as c:  # a second open finds nothing to do
        assert c.schema_version == SCHEMA_VERSION and c.patent("EP1A1").lang == "de"


def test_a_new_collection_gets_the_same_schema_as_an_upgraded_one(tmp_path):
    _release_1_collection(tmp_path / "old")
    Collection.open(tmp_path / "old", write=True).close()
    Collection.open(tmp_path / "new", create=True).close()
    for table in ("patents", "paragraphs", "figures", "embeddings", "meta", "figure_words"):
        assert _columns(tmp_path / "old", table) == _columns(tmp_path / "new", table)


def test_a_newer_collection_is_refused_clearly(tmp_path):
    root = tmp_path / "c"
    Collection.open(root, create=True).close()
    db = sqlite3.connect(root / DB_NAME, isolation_level=None)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    db.close()
    for write in (False, True):
        with pytest.raises(CollectionError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this figsearch"):
            Collection.open(root, write=write)
    # the refused writer let go of the lock
    from figsearch.store import WriterLock

    lock = WriterLock(root)
    lock.acquire()
    lock.release()


def test_a_failed_step_leaves_the_old_version(tmp_path, monkeypatch):
    root = tmp_path / "c"
    _release_1_collection(root)
    from figsearch.store import schema

    monkeypatch.setitem(schema.MIGRATIONS, 2, (*MIGRATIONS[2], "ALTER TABLE no_such_table ADD COLUMN x TEXT"))
    with pytest.raises(CollectionError, match="no_such_table"):
        Collection.open(root, write=True)
    assert "lang" not in _columns(root, "patents")  # the first statements of the step were rolled back
    with Collection.open(root) as reader:
        assert reader.schema_version == 1 and reader.patent("EP1A1").title == "Rotor"


def test_drawing_words_arrive_with_the_upgrade_and_are_replaced_not_doubled(tmp_path):
    root = tmp_path / "c"
    _release_1_collection(root)
    with Collection.open(root) as reader:  # not upgraded yet: no words table, a figure reads as having none
        assert reader.words.of("EP1A1-f1") == [] and reader.words.count() == 0
    assert _columns(root, "figure_words") == []
    with Collection.open(root, write=True) as c:
        assert c.schema_version >= 3
        assert c.words.of("EP1A1-f1") == []  # read before the step: no words until it is read again
        words = [DrawingWord("IMAGE", (1, 2, 30, 12), 0.93, 4), DrawingWord("UNIT", (34, 2, 60, 12), 0.91, 4)]
        c.words.write("EP1A1-f1", words)
        c.words.write("EP1A1-f1", words)  # a rerun replaces
        assert c.words.of("EP1A1-f1") == words and c.words.count() == 2
        c.words.write("EP1A1-f1", [DrawingWord("PRINTER")])
        assert [(w.text, w.box, w.line) for w in c.words.of("EP1A1-f1")] == [("PRINTER", None, 0)]
        with c.transaction() as db:  # a figure that goes takes its words with it
            db.execute("DELETE FROM figures WHERE figure_id='EP1A1-f1'")
        assert c.words.count() == 0
    assert _columns(root, "figure_words") == ["figure_id", "seq", "text", "line", "x0", "y0", "x1", "y1", "confidence"]


def _indexes(root, table: str) -> list[str]:
    db = sqlite3.connect(root / DB_NAME)
    try:
        return [r[1] for r in db.execute(f"PRAGMA index_list({table})")]
    finally:
        db.close()


def test_the_figures_are_indexed_by_their_image_digest_after_the_upgrade(tmp_path):
    root = tmp_path / "c"
    _release_1_collection(root)
    assert "figures_by_image" not in _indexes(root, "figures")
    with Collection.open(root) as reader:  # a reader of the old version finds by digest without the index
        assert [f.figure_id for f in reader.patents.figures_with_image("abc")] == ["EP1A1-f1"]
    with Collection.open(root, write=True) as c:
        assert c.schema_version >= 4
        assert [f.figure_id for f in c.patents.figures_with_image("abc")] == ["EP1A1-f1"]
        assert c.patents.figures_with_image("abd") == []
    assert "figures_by_image" in _indexes(root, "figures")
    Collection.open(tmp_path / "new", create=True).close()
    assert "figures_by_image" in _indexes(tmp_path / "new", "figures")
