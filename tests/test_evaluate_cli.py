"""``figsearch evaluate``: the table, --json, --compare, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from figsearch.cli import main
from figsearch.evaluate import experiment

from evaluate_fakes import FakeBackend, build_tiny

P1 = ["P1-D1", "P1-D2", "P1-D3", "P1-D3a"]
P2 = ["P2-D1", "P2-D2"]
PERFECT = {q: [d for d in (P1 if q in P1 else P2) if d != q] for q in P1 + P2}


@pytest.fixture
def tiny_dir(collection_dir, monkeypatch):
    build_tiny(collection_dir)
    monkeypatch.setattr(experiment, "open_backend", lambda path: FakeBackend({"visual": PERFECT, "text": {}}))
    return collection_dir


def _run(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_json_prints_mode_measure_means(tiny_dir, tmp_path):
    result = _run("--collection", tiny_dir, "--rule", "same-patent", "--modes", "text,visual", "--json",
                  "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    # P@10: P1-D1, P1-D2 find 3 sheets; P1-D3, P1-D3a 2 (the family never counts); P2 sheets 1 each
    assert data == {
        "text": {"AP@50": 0.0, "P@10": 0.0, "R@50": 0.0, "RR": 0.0, "nDCG@10": 0.0},
        "visual": {"AP@50": 1.0, "P@10": pytest.approx((3 + 3 + 2 + 2 + 1 + 1) / 60), "R@50": 1.0, "RR": 1.0, "nDCG@10": 1.0},
    }
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "runs" / "text.run").exists()


def test_table_is_printed_and_written_beside_the_collection(tiny_dir):
    result = _run("-c", tiny_dir, "--rule", "same-patent", "-k", "10", "--modes", "visual")
    assert result.exit_code == 0, result.output
    assert "| visual | 1.000 | 1.000–1.000 |" in result.output
    assert "Judgments: rule same-patent; 6 queries; k = 10." in result.output
    assert (tiny_dir / "eval" / "report.json").exists()


def test_qrels_file_and_query_sample(tiny_dir, tmp_path):
    qrels = tmp_path / "judged.qrels"
    qrels.write_text("P2-D1 0 P2-D2 1\nP1-D1 0 P1-D2 2\nP1-D1 0 P2-D2 0\n")
    result = _run("-c", tiny_dir, "--qrels", qrels, "--queries", "sample:1:0", "--modes", "visual", "--json",
                  "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["visual"]["AP@50"] == 1.0
    assert len((tmp_path / "o" / "queries.txt").read_text().split()) == 1


def test_compare_side_by_side(tiny_dir, tmp_path):
    other = build_tiny(tmp_path / "b")
    result = _run("-c", tiny_dir, "--compare", other, "--rule", "same-patent", "--modes", "visual",
                  "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert "## figsearch comparison" in result.output
    assert "| visual | 1.000 | 1.000 | +0.000 | 1.000 |" in result.output
    assert (tmp_path / "cmp" / "comparison.json").exists() and (tmp_path / "cmp" / "A" / "report.md").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "no judgments: give --qrels FILE or --rule same-patent"),
        (("--rule", "same-patent", "--qrels", "x.qrels"), "give either --qrels FILE or --rule, not both"),
        (("--rule", "same-class:USPC:9"), "depth 9 for USPC is out of range"),
        (("--rule", "same-patent", "--modes", "visual,fused"), "unknown mode 'fused'"),
        (("--rule", "same-patent", "--measures", "AP@50,Bogus"), "unknown measure 'Bogus'"),
        (("--rule", "same-patent", "--queries", "missing.txt"), "neither all, sample:N:SEED nor an existing file"),
    ],
)
def test_bad_arguments_give_one_clear_line(tiny_dir, tmp_path, extra, message):
    result = _run("-c", tiny_dir, "--out", tmp_path / "o", *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_qrels_line_names_file_and_line(tiny_dir, tmp_path):
    qrels = tmp_path / "bad.qrels"
    qrels.write_text("P1-D1 0 P1-D2 1\nP1-D1 0 P1-D3\n")
    result = _run("-c", tiny_dir, "--qrels", qrels, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert f"{qrels} line 2: expected 4 fields 'qid 0 docid rel', found 3" in result.output


def test_unknown_ids_in_qrels(tiny_dir, tmp_path):
    qrels = tmp_path / "ids.qrels"
    qrels.write_text("P1-D1 0 P1-D2 1\nP1-D1 0 P1-D0 1\nUS9-X 0 P1-D2 1\n")
    result = _run("-c", tiny_dir, "--qrels", qrels, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "1 unknown query id(s): US9-X; 1 unknown doc id(s): P1-D0" in result.output


def test_empty_query_set(tiny_dir, tmp_path):
    qrels = tmp_path / "none.qrels"
    qrels.write_text("P1-D1 0 P1-D2 0\n")
    result = _run("-c", tiny_dir, "--qrels", qrels, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "query set 'all' is empty" in result.output


def test_missing_collection(tmp_path):
    result = _run("-c", tmp_path / "nowhere", "--rule", "same-patent")
    assert result.exit_code == 2
    assert "no collection at" in result.output
    assert not (tmp_path / "nowhere").exists()  # no report folder left where no collection is
