"""``figsearch index`` and ``figsearch search`` end to end (fake encoders, and the offline ``lines``)."""

from __future__ import annotations

import json

import pytest
from _search_helpers import angle_image, hand_collection
from click.testing import CliRunner
from PIL import Image, ImageDraw

from figsearch.cli import main
from figsearch.records import Figure, Patent
from figsearch.store import Collection


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def indexed(collection_dir):
    hand_collection(collection_dir)
    code, out = run("index", "-c", collection_dir, "--visual-model", "fake-angle", "--text-model", "fake-words")
    assert code == 0, out
    assert "visual fake-angle:" in out and "5 embedded" in out and "index: rebuilt (no index yet), 5 vectors, Flat" in out
    return collection_dir


def test_search_json_shape(indexed):
    code, out = run("search", "-c", indexed, "--figure", "US1-A", "--mode", "avg", "-k", "2", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert [h["figure_id"] for h in data["hits"]] == ["US2-C", "EP3-E"]
    first = data["hits"][0]
    assert {"figure_id", "patent", "figure", "score", "scores"} <= set(first)
    assert first["patent"] == "US2" and first["figure"] == "FIG. 0" and set(first["scores"]) == {"visual", "text"}
    assert data["mode"] == "avg" and data["modalities"] == ["visual", "text"]


def test_search_table_and_image_query(indexed, tmp_path):
    path = tmp_path / "query.png"
    angle_image(31).save(path)
    code, out = run("search", "-c", indexed, "--image", path, "--text", "hub", "-k", "3")
    assert code == 0, out
    notes = [line for line in out.strip().splitlines() if line.startswith("note:")]
    assert any(n.startswith("note: lexical:") for n in notes)  # word queries use it by default, and say so
    lines = [line for line in out.strip().splitlines() if not line.startswith("note:")]
    assert lines[0].split()[:4] == ["#", "score", "visual", "text"]
    assert lines[1].split()[4] == "US1-B" and "hub" in lines[1]
    assert lines[-1].startswith("3 of ")


def test_errors_are_one_line_with_exit_status_2(indexed, tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    for args, message in [
        (("--figure", "NOPE"), "unknown figure id 'NOPE'"),
        (("--image", bad), f"{bad}: corrupt or truncated TIFF file"),
        (("--image", tmp_path / "missing.png"), "does not exist"),
        ((), "at least one of --figure, --image, --text"),
        (("--figure", "US1-A", "--text-weight", "2"), "text_weight=2.0"),
    ]:
        code, out = run("search", "-c", indexed, *args)
        assert code == 2 and out.startswith("figsearch: error: ") and message in out, (args, out)
        assert "Traceback" not in out
    code, out = run("search", "-c", indexed.parent / "nothing", "--text", "x")
    assert code == 2 and "no collection" in out


def test_text_only_collection_without_text_vectors(collection_dir):
    hand_collection(collection_dir)
    assert run("index", "-c", collection_dir, "--visual-model", "fake-angle", "--text-model", "none")[0] == 0
    code, out = run("search", "-c", collection_dir, "--text", "rotor")
    assert code == 2 and "no text vectors" in out and "--text-model minilm" in out


def _shape(kind: int) -> Image.Image:
    """Eight drawings of distinct shapes and drafting styles on portrait sheets."""
    image = Image.new("L", (500, 700), 255)
    d = ImageDraw.Draw(image)
    if kind % 2:
        d.ellipse((80, 120 + 10 * kind, 420, 560), outline=0, width=3)
    else:
        d.rectangle((60 + 8 * kind, 100, 440, 600 - 12 * kind), outline=0, width=3)
    spacing = 8 + 5 * kind
    for y in range(140, 560, spacing):
        if kind % 4 < 2:
            d.line((120, y, 380, y + 2 * kind), fill=0, width=1)
        else:
            for x in range(120, 380, spacing):
                d.point((x, y), fill=0)
    return image


@pytest.mark.parametrize("encoder", [None, "lines"])  # None: the default (the multi-level backbone model)
def test_rotated_or_cropped_copy_finds_its_original(collection_dir, tmp_path, encoder):
    with Collection.open(collection_dir, create=True) as c:
        for kind in range(8):
            path, sha = c.save_png("images", f"US{kind}", "D1", _shape(kind))
            c.upsert_patent(Patent(f"US{kind}", "US", str(kind)), [Figure(f"US{kind}-D1", f"US{kind}", image_path=path, image_sha256=sha)])
    code, out = run("index", "-c", collection_dir, "--text-model", "none", *(["--visual-model", encoder] if encoder else []))
    # the index run names the encoder: "visual backbone:<key>: 8 embedded" for the default
    assert code == 0 and f"visual {encoder or 'backbone'}:" in out, out
    for kind in (2, 5):
        rotated = _shape(kind).rotate(90, expand=True, fillcolor=255)
        cropped = _shape(kind).crop((30, 50, 480, 650))
        for name, image in (("rotated", rotated), ("cropped", cropped)):
            path = tmp_path / f"{name}{kind}.jpg"
            image.save(path, quality=85)
            # an upload is searched upright alone unless asked: the turned copy asks for every turn
            turns = ["--all-turns"] if name == "rotated" else []
            code, out = run("search", "-c", collection_dir, "--image", path, "--mode", "visual", "-k", "3", "--json", *turns)
            assert code == 0, out
            assert json.loads(out)["hits"][0]["figure_id"] == f"US{kind}-D1", (name, kind, out)


def test_neighbour_text_option(indexed):
    # EP3-E has no text: in auto it borrows its nearest drawings' texts by default (stop 24) or asked to; asked not
    # to, it is searched alone
    for asked in (["--neighbour-text"], []):
        code, out = run("search", "-c", indexed, "--figure", "EP3-E", "--mode", "auto", *asked, "--json")
        assert code == 0, out
        data = json.loads(out)
        assert data["modalities"] == ["visual", "text"] and any(n.startswith("neighbour_text:") for n in data["notes"])
    code, out = run("search", "-c", indexed, "--figure", "EP3-E", "--mode", "auto", "--no-neighbour-text", "--json")
    assert code == 0 and json.loads(out)["modalities"] == ["visual"]
    # the visual mode stays the visual channel alone unless asked
    code, out = run("search", "-c", indexed, "--figure", "EP3-E", "--mode", "visual", "--json")
    assert code == 0 and json.loads(out)["modalities"] == ["visual"]


def test_lexical_option(indexed):
    # US1-A is the figure whose text says "rotor blade"; the hits name the query words their text contains
    code, out = run("search", "-c", indexed, "--text", "rotor blade", "--mode", "text", "--lexical", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert any(n.startswith("lexical:") for n in data["notes"])
    assert data["hits"][0]["matched_words"] == ["rotor", "blade"]


def test_help_says_the_defaults_as_they_are(monkeypatch):
    """--help names the figure references --figure takes and the real defaults (stop 25: 'the service's default'
    told a user nothing; build said 'default: minilm' of a collection that got use-multilingual)."""
    from figsearch.search import query

    code, out = run("search", "--help")
    assert code == 0 and '"EP1667425A1 FIG. 1"' in " ".join(out.split())
    assert "[default: on in visual and auto, off in the other modes]" in " ".join(out.split())
    assert "the service's default" not in out
    assert "[default: on in visual and auto, off in the other modes]" in " ".join(run("evaluate", "--help")[1].split())
    # written from the rule itself, so that the help follows when the rule changes
    from figsearch.cli.base import rerank_default_text

    monkeypatch.setattr(query, "RERANKED_BY_DEFAULT", frozenset({"visual"}))
    assert rerank_default_text() == "on in visual, off in the other modes"
    code, out = run("build", "--help")
    assert "minilm when every document is in English" in " ".join(out.split())  # main's wording (audit31)
    assert "multilingual when some are in other languages" in " ".join(out.split())


def test_a_date_or_office_that_cannot_match_is_refused_not_searched(indexed):
    """'2021-13' and 'EPO' found nothing, silently (the HTTP API refused both with 422)."""
    for option, value, problem in (("--date-from", "2021-13", "month must be in 1..12"),
                                   ("--date-to", "2021-02-30", "day is out of range for month"),
                                   ("--date-from", "21-01", "expected YYYY, YYYY-MM or YYYY-MM-DD"),
                                   ("--office", "EPO", "not a two-letter office code")):
        code, out = run("search", "-c", indexed, "--text", "rotor", option, value)
        assert code == 2 and problem in out and f"'{value}'" in out, out
    code, out = run("search", "-c", indexed, "--text", "rotor blade", "--mode", "text", "--office", "us",
                    "--date-from", "2021-6", "--json")
    assert code == 0, out
    assert [h["figure_id"] for h in json.loads(out)["hits"]] == ["US2-D", "US2-C"]  # US2 is of 2021-06-01


def test_page_picks_the_page_of_a_multipage_file(indexed, tmp_path):
    """The CLI searched the first page of a PDF or TIFF alone (the API and the web page have a page field)."""
    path = tmp_path / "two.tif"
    angle_image(0).save(path, save_all=True, append_images=[angle_image(90)])
    searched = {}
    for page in ("1", "2"):
        code, out = run("search", "-c", indexed, "--image", path, "--page", page, "--mode", "visual", "-k", "1", "--json")
        assert code == 0, out
        searched[page] = json.loads(out)["hits"][0]["figure_id"]
        # stop 26: the user is told which page of how many was searched, the first one too
        assert json.loads(out)["notes"][0] == f"the file has 2 pages: page {page} was searched (--page N picks another)"
    assert searched == {"1": "US1-A", "2": "US2-D"}  # 0° is A's angle, 90° D's
    code, out = run("search", "-c", indexed, "--image", path, "--page", "3")
    assert code == 2 and "has 2 page(s); page 3 was asked for" in out, out
    single = tmp_path / "one.png"
    angle_image(0).save(single)
    code, out = run("search", "-c", indexed, "--image", single, "--mode", "visual", "-k", "1", "--json")
    assert code == 0 and not any("pages" in n for n in json.loads(out)["notes"]), out
    code, out = run("search", "-c", indexed, "--text", "rotor", "--page", "2")
    assert code == 2 and "--page picks a page of the --image file" in out, out


def test_csv_for_a_report_and_the_next_page_named(indexed):
    """An examiner's report needs the hits out (stop 27): --csv, the same columns as the API's format=csv."""
    import csv
    import io

    code, out = run("search", "-c", indexed, "--text", "rotor blade", "--mode", "text", "-k", "2", "--json")
    hits = json.loads(out)["hits"]
    result = CliRunner().invoke(main, ["search", "-c", str(indexed), "--text", "rotor blade", "--mode", "text", "-k", "2",
                                       "--csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))  # the notes go to stderr
    assert [(r["rank"], r["figure_id"], r["patent"]) for r in rows] == [(str(h["rank"]), h["figure_id"], h["patent"])
                                                                      for h in hits]
    assert float(rows[0]["text_score"]) == pytest.approx(hits[0]["scores"]["text"], abs=1e-6) and rows[0]["visual_score"] == ""
    code, out = run("search", "-c", indexed, "--text", "rotor", "--json", "--csv")
    assert code == 2 and "--json and --csv each print the hits: give one of them" in out
    # the table says how to get the next page, and which hits a later page holds
    code, out = run("search", "-c", indexed, "--figure", "US1-A", "--mode", "visual", "-k", "2")
    assert "2 of 4 candidates (the next 2: --offset 2), mode visual" in out, out
    code, out = run("search", "-c", indexed, "--figure", "US1-A", "--mode", "visual", "-k", "2", "--offset", "2")
    assert "3-4 of 4 candidates, mode visual" in out, out


def test_exclude_patents_as_the_api_and_the_page_have_it(indexed):
    code, out = run("search", "-c", indexed, "--figure", "US1-A", "--mode", "visual", "-k", "10", "--json",
                    "--exclude-patents", "us2, EP3", "--exclude-patents", "")
    assert code == 0, out
    assert {h["patent"] for h in json.loads(out)["hits"]} == {"US1"}


def test_show_takes_a_publication_number_for_the_patent(indexed):
    """From a hit to its patent (stop 27): `show` refused a publication number ("is a patent, not a figure")."""
    code, out = run("show", "-c", indexed, "us1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "US1  (no title)" and "published 2021-01-05" in lines[1] and "classes: CPC F03D 1/06" in out
    assert "figures (3):" in out and any(line.split()[:2] == ["US1-A", "FIG."] for line in lines)
    assert "[front_page]" in out
    code, out = run("show", "-c", indexed, "US1", "--json")
    data = json.loads(out)
    assert [f["figure_id"] for f in data["figures"]] == ["US1-F0", "US1-A", "US1-B"]
    assert data["classifications"] == ["CPC F03D 1/06"] and data["publication_date"] == "2021-01-05"
    code, out = run("show", "-c", indexed, "US1-A")  # a figure as before
    assert code == 0 and out.startswith("US1-A  (US1, FIG. 1, drawing)"), out
    code, out = run("show", "-c", indexed, "US9A1")
    assert code != 0 and "no patent or figure US9A1 in collection" in out, out


def test_info_says_what_is_searchable(collection_dir):
    """Stop 27: `figsearch info` counted what a collection holds, not what is indexed (the API's info did)."""
    hand_collection(collection_dir)
    code, out = run("info", "-c", collection_dir)
    assert code == 0 and "indexes     none yet: nothing is searchable (figsearch index)" in out, out
    run("index", "-c", collection_dir, "--visual-model", "fake-angle", "--text-model", "fake-words")
    code, out = run("info", "-c", collection_dir)
    assert "visual      5 of 5 vectors indexed (fake-angle; Flat, built " in out, out
    assert "text        4 of 4 vectors indexed (fake-words; Flat, built " in out, out  # EP3-E has no text
    data = json.loads(run("info", "-c", collection_dir, "--json")[1])
    assert data["indexes"]["visual"]["indexed"] == 5 and data["encoders"]["text"]["spec"] == "fake-words"
