"""The public Python API (figsearch.build, figsearch.open) on a tiny collection built here, and
that the CLI answers with the same objects (show, search, evaluate)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from ingest_helpers import drawing, write_ep_document, write_us_document

pytest.importorskip("faiss")

import figsearch  # noqa: E402
from figsearch.cli import main  # noqa: E402
from figsearch.cli.show_cmd import details_json  # noqa: E402
from figsearch.errors import InputError, NotFound  # noqa: E402
from figsearch.records import Hit  # noqa: E402

#: cheap offline encoders: HOG for drawings, MiniLM (shipped with the package's models) for text
VISUAL, TEXT = "hog", "minilm"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    write_ep_document(base / "docs" / "EP1234567A1", figures=3)
    write_us_document(base / "docs" / "us", sheets=2)
    stages = []
    report = figsearch.build(
        base / "docs", base / "coll", skip_ocr=True, visual_model=VISUAL, text_model=TEXT,
        on_stage=lambda name, so_far: stages.append((name, so_far.index is not None)),
    )
    return base, report, stages


def test_import_figsearch_stays_light():
    code = ("import sys, figsearch; heavy = [m for m in ('numpy', 'torch', 'faiss', 'PIL', 'transformers') "
            "if m in sys.modules]; print(heavy); figsearch.open; print('faiss' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0] == "[]", done.stdout  # nothing heavy before a name is used
    assert {"open", "build", "SearchCollection"} <= set(dir(figsearch))


def test_build_reports_each_stage(built):
    base, report, stages = built
    assert isinstance(report, figsearch.BuildReport)
    assert report.collection == str(base / "coll")
    assert report.ingest.documents == 2 and report.ingest.figures >= 5
    assert report.signs is None and report.signs_skipped == "skip_ocr"
    assert {e.modality for e in report.index.embedded} == {"visual", "text"}
    assert stages == [("ingest", False), ("index", True)]  # no signs stage with skip_ocr
    again = figsearch.build([base / "docs"], base / "coll", skip_ocr=True)
    assert again.ingest.skipped_unchanged == 2 and all(e.embedded == 0 for e in again.index.embedded)


def test_search_by_figure_image_and_text(built):
    base, _, _ = built
    with figsearch.open(base / "coll") as coll:
        assert isinstance(coll, figsearch.SearchCollection)
        by_figure = coll.search(figure="EP1234567A1 FIG. 1", mode="visual", k=3)
        assert isinstance(by_figure, figsearch.SearchResult)
        assert all(isinstance(h, Hit) for h in by_figure.hits) and len(by_figure.hits) == 3
        assert "EP1234567A1-f0001" not in [h.figure_id for h in by_figure.hits]
        assert [h.rank for h in by_figure.hits] == [1, 2, 3]
        image = drawing(label="FIG. 2")
        path = base / "query.png"
        image.save(path)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        # a path, its bytes and the PIL image are the same query
        results = [coll.search(image=q, mode="visual", k=4) for q in (path, str(path), buffer.getvalue(), image)]
        first = [(h.figure_id, round(h.score, 5)) for h in results[0].hits]
        assert all([(h.figure_id, round(h.score, 5)) for h in r.hits] == first for r in results[1:])
        by_text = coll.search(text="widget holder", mode="text", k=5, office="EP")
        assert by_text.hits and all(h.patent == "EP1234567A1" for h in by_text.hits)
        both = coll.search(image=path, text="widget", mode="avg", k=5)
        assert set(both.modalities) == {"visual", "text"}
        assert all(set(h.scores) <= {"visual", "text"} for h in both.hits)
        with pytest.raises(InputError):
            coll.search(mode="avg")


def test_figure_patent_and_info(built):
    base, _, _ = built
    with figsearch.open(base / "coll") as coll:
        details = coll.figure("EP1234567A1 FIG. 2")
        assert isinstance(details, figsearch.FigureDetails)
        assert details.figure.figure_id == "EP1234567A1-f0002" and details.patent_title == "Widget holder"
        assert details.figure.description and "view number 2" in details.figure.description
        assert details.sentences and details.sentences[0].reason == "brief_description"
        assert coll.figure("EP1234567A1-f0002") == details
        with pytest.raises(NotFound, match="no figure labelled FIG. 9"):
            coll.figure("EP1234567A1 FIG. 9")
        patent = coll.patent("EP1234567A1")
        assert patent.patent.title == "Widget holder"
        assert {f.figure_id for f in patent.figures} >= {"EP1234567A1-f0001", "EP1234567A1-f0003"}
        info = coll.info()
        assert info["patents"] == 2 and info["failures"] == 0
        assert info["encoders"]["visual"]["spec"] == VISUAL and info["indexes"]["visual"]["indexed"] >= 5


def test_the_cli_answers_with_the_same_objects(built):
    base, _, _ = built
    root = str(base / "coll")
    runner = CliRunner()
    shown = runner.invoke(main, ["show", "-c", root, "EP1234567A1 FIG. 2", "--json"])
    assert shown.exit_code == 0, shown.output
    with figsearch.open(root) as coll:
        assert json.loads(shown.output) == details_json(coll.figure("EP1234567A1-f0002"))
        expected = coll.search(figure="EP1234567A1-f0001", text="widget", mode="rrf", k=4)
    found = runner.invoke(main, ["search", "-c", root, "--figure", "EP1234567A1-f0001", "--text", "widget",
                                 "--mode", "rrf", "-k", "4", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert [h["figure_id"] for h in hits] == [h.figure_id for h in expected.hits]
    assert [h["score"] for h in hits] == [round(h.score, 6) for h in expected.hits]


def test_evaluate_gives_what_the_cli_reports(built):
    base, _, _ = built
    root = str(base / "coll")
    with figsearch.open(root) as coll:
        result = coll.evaluate(rules=["same-patent"], k=5, modes=["visual", "avg"])
    assert isinstance(result, figsearch.EvaluationResult)
    assert set(result.means) == {"visual", "avg"} and result.k == 5 and result.queries > 0
    assert 0.0 <= result.means["visual"]["AP@5"] <= 1.0
    assert "AP@5" in result.markdown()
    done = CliRunner().invoke(main, ["evaluate", "-c", root, "--rule", "same-patent", "-k", "5",
                                     "--modes", "visual,avg", "--json", "--out", str(base / "eval")])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == result.means
