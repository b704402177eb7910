"""A collection kept for a long time: what ``figsearch info`` / ``/api/info`` / ``serve`` advise for one built by an
older figsearch (``figsearch.pipeline.upgrade``), and a search served while its visual encoder is switched."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from _search_helpers import hand_collection
from figsearch.cli import main
from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
from figsearch.pipeline.index import update_collection
from figsearch.pipeline.upgrade import upgrade_advice
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import DB_NAME, SCHEMA_VERSION, Collection
from figsearch.store.schema import BASELINE, MIGRATIONS


def _make_version_2(root) -> None:
    """A collection as a figsearch of schema version 2 left it: one patent whose sheet was read by OCR then, its
    indexes built with the ``drawing`` encoder, no BM25 table."""
    root.mkdir(parents=True)
    db = sqlite3.connect(root / DB_NAME)
    db.executescript(BASELINE)
    for statement in MIGRATIONS[2]:
        db.execute(statement)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("schema_version", "2"),
        ("setting:visual_encoder", json.dumps({"spec": "drawing", "key": "drawing:1", "identity": {}})),
        ("setting:text_encoder", json.dumps({"spec": "minilm", "key": "minilm:1", "identity": {}})),
    ])
    db.execute("INSERT INTO patents (publication_number, office, number, ingested_at, language) "
               "VALUES ('US1', 'US', '1', '2026-01-01', 'en')")
    db.execute("INSERT INTO figures (figure_id, publication_number, role, ocr_done_at) "
               "VALUES ('US1-D1', 'US1', 'drawing', '2026-01-02T00:00:00+00:00')")
    db.commit()
    db.close()


def _whats(advice) -> str:
    return " | ".join(a.what for a in advice)


def test_an_older_collection_is_told_what_it_lacks_and_what_to_run(collection_dir):
    _make_version_2(collection_dir)
    with Collection.open(collection_dir) as c:  # a reader: the collection stays at version 2
        advice = upgrade_advice(c)
    whats = _whats(advice)
    assert f"schema version 2, this figsearch's is {SCHEMA_VERSION}" in whats
    assert "1 sheets were read before figsearch stored the words printed in drawings" in whats
    assert f"visual encoder drawing is not today's default {DEFAULT_VISUAL_ENCODER}" in whats
    assert "no BM25 table" in whats
    assert f'figsearch index -c DIR --visual-model "{DEFAULT_VISUAL_ENCODER}"' in [a.command for a in advice]

    with Collection.open(collection_dir, write=True):  # any writer upgrades the schema...
        pass
    with Collection.open(collection_dir) as c:
        whats = _whats(upgrade_advice(c))
        assert "schema version" not in whats
        # ... but the sheet read before it still has no words: the advice stays until it is read again
        assert "1 sheets were read before" in whats
        c_db = sqlite3.connect(collection_dir / DB_NAME)
        c_db.execute("UPDATE figures SET ocr_done_at='9999-01-01T00:00:00+00:00'")  # read again since
        c_db.commit()
        c_db.close()
        assert "sheets were read before" not in _whats(upgrade_advice(c))


def test_the_sheet_context_advice_says_whether_any_vector_changes(collection_dir):
    """A collection on the default's network without its sheet context is told to switch; with no sheet cut the
    line says the switch changes no vector (it said "encodes only the 0 cut sheets"); with one, how many."""
    from figsearch.embed.sheet_context import split_sheet_context

    _make_version_2(collection_dir)
    plain, _ = split_sheet_context(DEFAULT_VISUAL_ENCODER)
    db = sqlite3.connect(collection_dir / DB_NAME)
    db.execute("UPDATE meta SET value=? WHERE key='setting:visual_encoder'",
               (json.dumps({"spec": plain, "key": "plain:1", "identity": {}}),))
    db.commit()
    with Collection.open(collection_dir) as c:
        line = [a.what for a in upgrade_advice(c) if a.what.startswith(f"visual encoder {plain}:")]
    assert len(line) == 1 and "no sheet here is cut, so no vector changes" in line[0]
    db.execute("INSERT INTO figures (figure_id, publication_number, role, parent_id) "
               "VALUES ('US1-D1-1', 'US1', 'drawing', 'US1-D1')")
    db.commit()
    db.close()
    with Collection.open(collection_dir) as c:
        line = [a.what for a in upgrade_advice(c) if a.what.startswith(f"visual encoder {plain}:")]
    assert len(line) == 1 and "encodes only the 1 cut sheets" in line[0]


def test_a_current_collection_gets_no_advice_and_info_prints_the_command(collection_dir):
    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    out = CliRunner().invoke(main, ["info", "-c", str(collection_dir), "--json"])
    assert out.exit_code == 0, out.output
    upgrades = json.loads(out.output)["upgrades"]
    # a test encoder is not the default: that is the one line, with its command
    assert [u["command"] for u in upgrades] == [f'figsearch index -c DIR --visual-model "{DEFAULT_VISUAL_ENCODER}"']
    text = CliRunner().invoke(main, ["info", "-c", str(collection_dir)]).output
    assert f'upgrade     visual encoder fake-angle is not today\'s default' in text
    assert f"figsearch index -c {collection_dir} --visual-model" in text


def test_a_search_served_while_the_visual_encoder_is_switched_keeps_answering(collection_dir, monkeypatch):
    """The new encoder is recorded only once its index is published: a service that searches while the new index
    is being built encodes with the encoder of the index it has (before, every search failed with 409 for as
    long as the build took)."""
    import figsearch.pipeline.index as index_stage

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    real_sync = index_stage.sync_indexes
    during = []
    with SearchService.open(collection_dir) as service:
        def sync_while_searching(*args, **kwargs):
            during.append([h.figure_id for h in service.search(Query(figure_id="US1-A", mode="visual", k=3)).hits])
            return real_sync(*args, **kwargs)

        monkeypatch.setattr(index_stage, "sync_indexes", sync_while_searching)
        with Collection.open(collection_dir, write=True) as c:
            update_collection(c, visual_model="fake-angle:2", text_model="fake-words")
        after = service.search(Query(figure_id="US1-A", mode="visual", k=3))
    assert during and during[0]
    assert after.hits
    with Collection.open(collection_dir) as c:
        assert c.get_setting("visual_encoder")["spec"] == "fake-angle:2"


def test_backup_is_a_collection_of_its_own_with_the_same_answers(collection_dir, tmp_path):
    from figsearch.store.backup import backup_collection

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    with SearchService.open(collection_dir) as s:  # served meanwhile: a reader holds the database open
        expected = [(h.figure_id, round(h.score, 6)) for h in s.search(Query(figure_id="US1-A", k=5)).hits]
        copy = backup_collection(collection_dir, tmp_path / "backup", link=True)
    assert copy.linked == 6  # the 5 drawings and 1 front page (the test helper stores no thumbnails)
    assert not (tmp_path / "backup" / ".writer.lock").exists()
    assert not (tmp_path / "backup" / f"{DB_NAME}-wal").exists()
    with SearchService.open(tmp_path / "backup") as s:
        assert [(h.figure_id, round(h.score, 6)) for h in s.search(Query(figure_id="US1-A", k=5)).hits] == expected


def test_backup_waits_for_no_writer_and_refuses_a_used_destination(collection_dir, tmp_path):
    from figsearch.errors import CollectionLocked, InputError
    from figsearch.store.backup import backup_collection

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True):  # a build running
        with pytest.raises(CollectionLocked, match="is being written by"):
            backup_collection(collection_dir, tmp_path / "b")
    assert not (tmp_path / "b").exists()
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(InputError, match="not an empty folder"):
        backup_collection(collection_dir, tmp_path / "used")
    with pytest.raises(InputError, match="inside the collection"):
        backup_collection(collection_dir, collection_dir / "b")
    out = CliRunner().invoke(main, ["backup", "-c", str(collection_dir), str(tmp_path / "b"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["files"] > 6


def test_info_says_when_the_index_was_last_added_to(collection_dir):
    """A weekly build appends to the index it has: ``info`` showed only when it was first built."""
    from _search_helpers import add_patent

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    first = json.loads(CliRunner().invoke(main, ["info", "-c", str(collection_dir), "--json"]).output)
    assert first["indexes"]["visual"]["updated_at"] is None
    with Collection.open(collection_dir, write=True) as c:
        add_patent(c, "US9", [("Z", 45, "rotor")])
        report = update_collection(c)
    assert {i.modality: i.action for i in report.indexes}["visual"] == "appended"
    after = json.loads(CliRunner().invoke(main, ["info", "-c", str(collection_dir), "--json"]).output)
    assert after["indexes"]["visual"]["updated_at"] and after["indexes"]["visual"]["indexed"] == 6
    assert ", added to 20" in CliRunner().invoke(main, ["info", "-c", str(collection_dir)]).output


def test_leaving_out_the_querys_patent_leaves_out_its_other_publications(collection_dir):
    """An EP A1 and its B1 (the same number, the same drawings): searching by the A1's figure and leaving out its
    patent showed the B1's copy of it first (cosine 0.998 on the shared data's EP1667425A1)."""
    from _search_helpers import add_patent, angle_image
    from figsearch.records import Figure, FigureRole, Patent

    with Collection.open(collection_dir, create=True) as c:
        for kind in ("A1", "B1"):
            pub = f"EP5{kind}"
            path, digest = c.save_png("images", pub, "f1", angle_image(20))
            c.upsert_patent(Patent(pub, "EP", "5", kind, title="Widget", publication_date="2021-01-01"),
                            [Figure(f"{pub}-f1", pub, label="FIG. 1", role=FigureRole.DRAWING, image_path=path,
                                    image_sha256=digest, width=16, height=16)])
        add_patent(c, "US7", [("A", 40, None)])
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
        assert c.patents.other_kinds("EP5A1") == ["EP5B1"] and c.patents.other_kinds("US7") == []
    with SearchService.open(collection_dir) as s:
        kept = s.search(Query(figure_id="EP5A1-f1", mode="visual", k=5))
        assert kept.hits[0].figure_id == "EP5B1-f1"
        left_out = s.search(Query(figure_id="EP5A1-f1", mode="visual", k=5, exclude_query_patent=True))
    assert [h.patent for h in left_out.hits] == ["US7"]
    assert any("EP5B1, another publication of EP5A1's application, is left out too" in n for n in left_out.notes)


def test_leaving_out_the_querys_patent_leaves_out_its_application_under_another_number(collection_dir):
    """A US application and its grant: other numbers (US2021...A1, US11...B2), the same application number and the
    same drawings. Leaving out the application's patent leaves out the grant too; a patent of another application
    stays. A collection of schema 4 (no application column) is read as it is, pairing by number only."""
    from _search_helpers import add_patent, angle_image
    from figsearch.records import Figure, FigureRole, Patent

    with Collection.open(collection_dir, create=True) as c:
        for pub, number, kind in (("US20210012345A1", "20210012345", "A1"), ("US11222333B2", "11222333", "B2")):
            path, digest = c.save_png("images", pub, "D1", angle_image(20))
            c.upsert_patent(Patent(pub, "US", number, kind, title="Widget", application_number="US16123456"),
                            [Figure(f"{pub}-D1", pub, label="FIG. 1", role=FigureRole.DRAWING, image_path=path,
                                    image_sha256=digest, width=16, height=16)])
        add_patent(c, "US7", [("A", 40, None)])
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
        assert c.patents.other_kinds("US20210012345A1") == ["US11222333B2"] and c.patents.other_kinds("US7") == []
        assert c.patent("US11222333B2").application_number == "US16123456"
    with SearchService.open(collection_dir) as s:
        left_out = s.search(Query(figure_id="US20210012345A1-D1", mode="visual", k=5, exclude_query_patent=True))
    assert [h.patent for h in left_out.hits] == ["US7"]
    assert any("US11222333B2, another publication of US20210012345A1's application" in n for n in left_out.notes)

    db = sqlite3.connect(collection_dir / DB_NAME)  # as a schema-4 collection: no column, no pairing, no error
    db.execute("DROP INDEX patents_by_application")
    db.execute("ALTER TABLE patents DROP COLUMN application_number")
    db.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    db.commit()
    db.close()
    with Collection.open(collection_dir) as c:
        assert c.patents.other_kinds("US20210012345A1") == []
        assert c.patent("US11222333B2").application_number is None


def test_an_ivf_index_built_before_exact_assignment_is_advised_a_rebuild(collection_dir):
    from figsearch.index.files import index_dir, read_manifest, write_manifest

    hand_collection(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
        assert not [a for a in upgrade_advice(c) if "--rebuild" in a.command]  # Flat: assigns exactly
    directory = index_dir(collection_dir)
    manifest = read_manifest(directory)
    entry = manifest["modalities"]["visual"]
    entry["plan"]["factory"] = "IVF4096_HNSW32,PQ64x4fs"
    entry.pop("assignment", None)  # as an index built before stop 18 records it
    write_manifest(directory, manifest)
    with Collection.open(collection_dir) as c:
        advice = [a for a in upgrade_advice(c) if "--rebuild" in a.command]
    assert len(advice) == 1 and "the visual index (IVF4096_HNSW32,PQ64x4fs" in advice[0].what
