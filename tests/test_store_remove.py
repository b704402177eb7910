"""Removing patents from a collection (``figsearch remove``, ``figsearch.pipeline.remove``): rows, files,
BM25 rows and indexes forget them; a search served meanwhile never shows them; a rerun does not bring them back."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from _search_helpers import CALLS, add_patent, indexed_hand_collection
from figsearch.cli import main
from figsearch.errors import NotFound
from figsearch.pipeline.remove import remove_patents
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection


@pytest.fixture
def indexed(collection_dir):
    return indexed_hand_collection(collection_dir)


def _tables(c: Collection) -> dict[str, int]:
    return {t: c.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("patents", "figures", "embeddings", "classifications", "figure_lexical", "figure_fts")}


def _hits(service: SearchService, **query) -> list[str]:
    return [h.figure_id for h in service.search(Query(k=10, **query)).hits]


def test_remove_forgets_rows_files_and_index_entries(indexed):
    with Collection.open(indexed) as c:
        before = _tables(c)
        images = [c.path(f.image_path) for f in c.figures(patent="US2")]
    assert all(p.exists() for p in images)
    calls = dict(CALLS)
    with Collection.open(indexed, write=True) as c:
        report = remove_patents(c, ["US2"])
        after = _tables(c)
    assert report.patents == ["US2"] and report.figures == 2 and report.files == 2
    assert CALLS == calls  # the indexes were rebuilt from the stored vectors: no model ran
    assert {i.modality: (i.action, i.count) for i in report.indexes} == {"visual": ("rebuilt", 3),
                                                                       "text": ("rebuilt", 2)}
    assert after["patents"] == before["patents"] - 1
    assert after["figures"] == before["figures"] - 2
    assert after["classifications"] == before["classifications"] - 1
    assert after["embeddings"] < before["embeddings"]
    assert after["figure_fts"] == after["figure_lexical"] == before["figure_lexical"] - 2
    assert not any(p.exists() for p in images) and not images[0].parent.exists()
    with SearchService.open(indexed) as s:
        assert not {"US2-C", "US2-D"} & set(_hits(s, text="rotor blade hub", mode="text"))
        assert not {"US2-C", "US2-D"} & set(_hits(s, figure_id="US1-A", mode="visual"))
        with pytest.raises(NotFound, match="unknown figure id 'US2-C'"):
            s.figure_details("US2-C")


def test_a_running_search_service_never_shows_a_removed_patent(indexed):
    """The server's service keeps its snapshot open: between the removal's commit and its index publication the
    removed figures are dropped as candidates, and afterwards the new indexes are searched."""
    with SearchService.open(indexed) as s:
        assert "US2-D" in _hits(s, figure_id="US1-A", mode="visual")
        with Collection.open(indexed, write=True) as c:
            remove_patents(c, ["US2"], reindex=False)
        assert not {"US2-C", "US2-D"} & set(_hits(s, figure_id="US1-A", mode="visual"))
        with Collection.open(indexed, write=True) as c:
            remove_patents(c, [], missing_ok=True)
            from figsearch.pipeline.remove import sync_stored_indexes

            sync_stored_indexes(c, [])
        assert s.info()["indexes"]["visual"]["indexed"] == 3
        assert not {"US2-C", "US2-D"} & set(_hits(s, figure_id="US1-A", mode="visual"))


def test_unknown_numbers_are_refused_before_anything_is_removed(indexed):
    with Collection.open(indexed, write=True) as c:
        with pytest.raises(NotFound, match="EP9"):
            remove_patents(c, ["US2", "EP9"])
        assert "US2" in c.patent_numbers()
        report = remove_patents(c, ["US2", "EP9"], missing_ok=True)
    assert report.patents == ["US2"] and any("EP9" in n for n in report.notes)


def test_the_cli_removes_and_a_rerun_of_the_same_source_does_not_bring_it_back(tmp_path, collection_dir):
    """End to end through ingest: an image folder ingested by mistake is removed, then the weekly rerun over
    the same folder skips it; --force brings it back."""
    from PIL import Image

    folder = tmp_path / "week" / "USD0900001"
    folder.mkdir(parents=True)
    Image.new("L", (64, 48), 255).save(folder / "USD0900001-D00001.png")
    runner = CliRunner()
    ingest = ["ingest", str(tmp_path / "week"), "-c", str(collection_dir), "--skip-ocr", "-q", "-j", "1"]
    assert runner.invoke(main, ingest).exit_code == 0
    with Collection.open(collection_dir) as c:
        (number,) = c.patent_numbers()
    out = runner.invoke(main, ["remove", "-c", str(collection_dir), number, "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["removed"] == [number]
    assert not list((collection_dir / "images").rglob("*.png"))
    assert runner.invoke(main, ingest).exit_code == 0
    with Collection.open(collection_dir) as c:
        assert c.patent_numbers() == []
    assert runner.invoke(main, ingest + ["--force"]).exit_code == 0
    with Collection.open(collection_dir) as c:
        assert c.patent_numbers() == [number]
    missing = runner.invoke(main, ["remove", "-c", str(collection_dir), "EP9999999A1"])
    assert missing.exit_code == 2 and "not in collection" in missing.output


def test_removing_a_sheet_changed_on_reingest_drops_its_bm25_row(collection_dir):
    """A figure deleted by SQL (its image changed on re-ingest) loses its FTS5 row at the next sync, which
    cannot cascade into the full-text table."""
    from figsearch.search import lexical

    with Collection.open(collection_dir, create=True) as c:
        add_patent(c, "US7", [("A", 10, "rotor blade"), ("B", 20, "hub")])
        lexical.sync(c)
        add_patent(c, "US7", [("A", 10, "rotor blade")])  # B gone from the corrected document
        report = lexical.sync(c)
        assert report.removed == 1
        assert _tables(c)["figure_fts"] == _tables(c)["figure_lexical"] == 1


def test_figsearch_remove_is_the_public_call(indexed):
    import figsearch

    report = figsearch.remove(indexed, "EP3")
    assert report.patents == ["EP3"] and report.figures == 1
    with figsearch.open(indexed) as coll:
        assert coll.info()["patents"] == 2
        assert coll.info()["indexes"]["visual"]["indexed"] == 4


def test_a_corrected_document_read_again_drops_the_files_of_the_figures_it_no_longer_has(tmp_path, collection_dir):
    """The XML fixed in place (one figure fewer, a new title): the patent is replaced, and the dropped figure's
    image and thumbnail go with its rows (they stayed on disk, unused, before)."""
    from ingest_helpers import write_ep_document

    folder = tmp_path / "data" / "EP1234567A1"
    write_ep_document(folder, figures=3)
    runner = CliRunner()
    ingest = ["ingest", str(tmp_path / "data"), "-c", str(collection_dir), "--skip-ocr", "-q", "-j", "1", "--json"]
    assert runner.invoke(main, ingest).exit_code == 0
    with Collection.open(collection_dir) as c:
        third = c.figure("EP1234567A1-f0003")
        files = [c.path(third.image_path), c.path(third.thumbnail_path)]
    assert all(p.exists() for p in files)
    write_ep_document(folder, figures=2, title="Widget holder, corrected")
    out = runner.invoke(main, ingest)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["removed_files"] == 2
    with Collection.open(collection_dir) as c:
        assert c.patent("EP1234567A1").title == "Widget holder, corrected"
        assert [f.figure_id for f in c.figures(patent="EP1234567A1") if f.figure_id.startswith("EP1234567A1-f")] == [
            "EP1234567A1-f0001", "EP1234567A1-f0002"]
        assert all(c.path(f.image_path).exists() for f in c.figures(patent="EP1234567A1"))
    assert not any(p.exists() for p in files)


def test_a_corrected_document_in_another_folder_replaces_the_stored_one(tmp_path, collection_dir):
    """The fixed XML arrives in the week's folder, not where the first one was: it is a new version of the same
    document (the same reader's format), not a second source such as a PDF of it: the figure it no longer has
    goes, with its files; figures read from a PDF of the patent stay."""
    from ingest_helpers import write_ep_document, write_pdf

    write_ep_document(tmp_path / "week1" / "EP1234567A1", figures=3)
    (tmp_path / "pdfs").mkdir()
    write_pdf(tmp_path / "pdfs" / "EP1234567A1.pdf", pages=2)
    runner = CliRunner()

    def ingest(folder: str) -> dict:
        out = runner.invoke(main, ["ingest", str(tmp_path / folder), "-c", str(collection_dir), "--skip-ocr", "-q",
                                   "-j", "1", "--json"])
        assert out.exit_code == 0, out.output
        return json.loads(out.output.strip().splitlines()[-1])

    ingest("week1")
    ingest("pdfs")
    with Collection.open(collection_dir) as c:
        before = {f.figure_id for f in c.figures(patent="EP1234567A1")}
    assert {"EP1234567A1-f0003", "EP1234567A1-p001"} <= before
    write_ep_document(tmp_path / "week9" / "EP1234567A1", figures=2, title="Widget holder, corrected")
    assert ingest("week9")["removed_files"] == 2
    with Collection.open(collection_dir) as c:
        after = {f.figure_id for f in c.figures(patent="EP1234567A1")}
        patent = c.patent("EP1234567A1")
    assert after == before - {"EP1234567A1-f0003"}
    assert patent.title == "Widget holder, corrected" and patent.source_path.startswith(str(tmp_path / "week9"))


def test_a_moved_input_folder_is_not_read_again(tmp_path, collection_dir):
    """Sources are named by their absolute path: the input folder moved (a new disk, a new share) made the next
    build decode every document again. The same files (names and bytes) are now known by their digest."""
    from ingest_helpers import write_ep_document

    write_ep_document(tmp_path / "old" / "EP1234567A1", figures=2)
    runner = CliRunner()

    def ingest(folder: str, *extra: str) -> dict:
        out = runner.invoke(main, ["ingest", str(tmp_path / folder), "-c", str(collection_dir), "--skip-ocr", "-q",
                                   "-j", "1", "--json", *extra])
        assert out.exit_code == 0, out.output
        return json.loads(out.output.strip().splitlines()[-1])

    assert ingest("old")["documents"] == 1
    (tmp_path / "old").rename(tmp_path / "new")
    moved = ingest("new")
    assert (moved["documents"], moved["skipped_unchanged"], moved["skipped_moved"]) == (0, 1, 1)
    assert ingest("new")["skipped_moved"] == 0  # known by its new name now
    assert ingest("new", "--force")["documents"] == 1
    write_ep_document(tmp_path / "other" / "EP1234567A1", figures=2, title="Widget holder, corrected")
    assert ingest("other")["documents"] == 1  # other bytes: read


def test_two_patents_folders_with_the_same_image_are_both_read(tmp_path, collection_dir):
    """The digest of an image folder's unit does not hold its patent number (the folder's name does): the same
    blank sheet under two patents' folders is two patents, not one moved."""
    from PIL import Image

    for number in ("USD0900001", "USD0900002"):
        folder = tmp_path / "week" / number
        folder.mkdir(parents=True)
        Image.new("L", (64, 48), 255).save(folder / "D00001.png")
    done = CliRunner().invoke(main, ["ingest", str(tmp_path / "week" / "USD0900001"), "-c", str(collection_dir),
                                     "--skip-ocr", "-q", "-j", "1"])
    assert done.exit_code == 0, done.output
    done = CliRunner().invoke(main, ["ingest", str(tmp_path / "week" / "USD0900002"), "-c", str(collection_dir),
                                     "--skip-ocr", "-q", "-j", "1", "--json"])
    assert json.loads(done.output.strip().splitlines()[-1])["documents"] == 1
    with Collection.open(collection_dir) as c:
        assert len(c.patent_numbers()) == 2


def test_remove_what_was_read_from_a_folder(tmp_path, collection_dir):
    """The week's folder ingested by mistake: --read-from takes its patents out, not those of a folder whose name
    merely starts the same, nor of another case; a folder moved since is known by its new name too."""
    from ingest_helpers import write_ep_document

    write_ep_document(tmp_path / "week" / "EP1000001A1", figures=1, number="1000001")
    write_ep_document(tmp_path / "week-2" / "EP1000002A1", figures=1, number="1000002")
    write_ep_document(tmp_path / "Week" / "EP1000003A1", figures=1, number="1000003")
    runner = CliRunner()
    for folder in ("week", "week-2", "Week"):
        done = runner.invoke(main, ["ingest", str(tmp_path / folder), "-c", str(collection_dir), "--skip-ocr", "-q",
                                    "-j", "1"])
        assert done.exit_code == 0, done.output
    (tmp_path / "week-2").rename(tmp_path / "moved")
    assert runner.invoke(main, ["ingest", str(tmp_path / "moved"), "-c", str(collection_dir), "--skip-ocr", "-q",
                                "-j", "1"]).exit_code == 0
    out = runner.invoke(main, ["remove", "-c", str(collection_dir), "--read-from", str(tmp_path / "week") + "/",
                               "--read-from", str(tmp_path / "moved"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["removed"] == ["EP1000001A1", "EP1000002A1"]
    with Collection.open(collection_dir) as c:
        assert c.patent_numbers() == ["EP1000003A1"]
    nothing = runner.invoke(main, ["remove", "-c", str(collection_dir), "--read-from", str(tmp_path / "week")])
    assert nothing.exit_code == 2 and "no patent of collection" in nothing.output
