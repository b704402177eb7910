"""``figsearch build`` and ``figsearch ingest``'s reading of reference signs, on a tiny EP document."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ingest_helpers import write_ep_document

pytest.importorskip("tesserocr")
pytest.importorskip("faiss")

from figsearch.cli import main  # noqa: E402
from figsearch.store import Collection  # noqa: E402


def _unread(root) -> int:
    with Collection.open(root) as coll:
        return coll.db.execute("SELECT COUNT(*) FROM figures WHERE ocr_done_at IS NULL").fetchone()[0]


def test_ingest_reads_reference_signs_unless_told_not_to(tmp_path):
    write_ep_document(tmp_path / "docs" / "EP1234567A1", figures=2)
    runner = CliRunner()
    skipped = runner.invoke(main, ["ingest", str(tmp_path / "docs"), "-c", str(tmp_path / "a"), "--skip-ocr", "-q"])
    assert skipped.exit_code == 0, skipped.output
    assert "reference signs" not in skipped.output and _unread(tmp_path / "a") > 0
    read = runner.invoke(main, ["ingest", str(tmp_path / "docs"), "-c", str(tmp_path / "b"), "-q", "--json"])
    assert read.exit_code == 0, read.output
    result = json.loads(read.output)
    assert result["documents"] == 1 and result["ocr"]["figures"] == result["figures"]
    assert _unread(tmp_path / "b") == 0


def test_build_makes_a_searchable_collection_and_a_rerun_does_nothing_new(tmp_path):
    write_ep_document(tmp_path / "docs" / "EP1234567A1", figures=3)
    root = str(tmp_path / "c")
    runner = CliRunner()
    first = runner.invoke(main, ["build", str(tmp_path / "docs"), "-c", root, "-q"])
    assert first.exit_code == 0, first.output
    assert "ingested 1 documents" in first.output and "read " in first.output
    assert "visual index: rebuilt" in first.output and "is ready" in first.output
    hits = runner.invoke(main, ["search", "-c", root, "--figure", "EP1234567A1-f0001", "--mode", "visual", "--json"])
    assert hits.exit_code == 0, hits.output
    found = [h["figure_id"] for h in json.loads(hits.output)["hits"]]
    assert set(found) == {"EP1234567A1-f0002", "EP1234567A1-f0003"}  # the other drawings, never the front page
    again = runner.invoke(main, ["build", str(tmp_path / "docs"), "-c", root, "-q"])
    assert again.exit_code == 0, again.output
    assert "1 unchanged skipped" in again.output and "read 0 figures" in again.output
    assert "0 embedded" in again.output


def test_an_unknown_ocr_engine_is_refused_before_anything_is_read(tmp_path):
    write_ep_document(tmp_path / "docs" / "EP1234567A1", figures=1)
    done = CliRunner().invoke(main, ["ingest", str(tmp_path / "docs"), "-c", str(tmp_path / "c"), "--ocr-engine", "nope"])
    assert done.exit_code == 2 and "tesseract" in done.output, done.output
    assert not (tmp_path / "c" / "figsearch.sqlite").exists()
