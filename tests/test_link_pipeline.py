"""Spotting and linking on a small collection: signs, links, glossary, splits, notes, resumability, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image

from ocr_drawings import block_diagram, drawing, two_block_diagrams, two_figures

pytest.importorskip("tesserocr")

from figsearch.cli import main  # noqa: E402
from figsearch.pipeline.signs import spot_and_link  # noqa: E402
from figsearch.link.text import figure_sentences  # noqa: E402
from figsearch.records import Figure, FigureRole, Paragraph, Patent  # noqa: E402
from figsearch.store import Collection  # noqa: E402

DESCRIPTION = [
    "FIG. 1 is a side view of a printer. FIG. 2 is a view of its head. FIG. 3 is a section of the printer.",
    "In FIG. 1, a thermal printer 10 has a thermal head 12 arranged opposite to a platen roller 16.",
    "The feed rollers 22 and 24 are 7 mm wide and the thermal head 12 heats 2 rows.",
    "A guide 38 and the arm 14a hold the frame 102.",
    "The axis 7 of the roller 16 is set in 2005.",
]


def patent(number: str, paragraphs: list[str]) -> Patent:
    return Patent(number, number[:2], number[2:-2], number[-2:], title=f"Printer {number}",
                  paragraphs=[Paragraph(text=t, number=f"{i:04d}") for i, t in enumerate(paragraphs)])


def add(coll: Collection, pub: str, paragraphs: list[str], images: dict[str, Image.Image | bytes]) -> None:
    figures = []
    for seq, (key, image) in enumerate(images.items()):
        if isinstance(image, bytes):  # an unreadable stored image
            path = f"images/{pub}/{key}.png"
            (coll.root / path).parent.mkdir(parents=True, exist_ok=True)
            (coll.root / path).write_bytes(image)
            sha, size = "broken", (10, 10)
        else:
            path, sha = coll.save_png("images", pub, key, image)
            size = image.size
        figures.append(Figure(f"{pub}-{key}", pub, sequence=seq, image_path=path, width=size[0], height=size[1],
                              image_sha256=sha))
    coll.upsert_patent(patent(pub, paragraphs), figures)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("coll")
    with Collection.open(root, create=True) as coll:
        add(coll, "EP1000001A1", DESCRIPTION, {
            "f0001": drawing(["10", "12", "16", "22", "24", "7"], "FIG. 1"),
            "f0002": two_figures(["12", "38"], ["14a", "102"]),
            "f0003": Image.new("L", (900, 1200), 255),
            "f0004": b"not a png at all",
        })
        add(coll, "US2000001A1", [], {"D00001": drawing(["12", "16"])})
        report = spot_and_link(coll)
    return root, report


def test_signs_links_and_glossary_are_stored(built):
    root, report = built
    with Collection.open(root) as coll:
        fig = coll.figure("EP1000001A1-f0001")
        numerals = {s.text for s in coll.signs.of(fig.figure_id) if s.kind == "numeral"}
        assert numerals == {"10", "12", "16", "22", "24", "7"}
        assert fig.label == "FIG. 1" and fig.description == "FIG. 1 is a side view of a printer."
        links = coll.links.links_of(fig.figure_id)
        by_reason = {(link.reason, link.sign) for link, _ in links}
        assert ("brief_description", "") in by_reason and ("sign", "12") in by_reason
        texts = {text for _, text in links}
        assert "In FIG. 1, a thermal printer 10 has a thermal head 12 arranged opposite to a platen roller 16." in texts
        assert "The axis 7 of the roller 16 is set in 2005." in texts
        glossary = {g.sign: g for g in coll.links.glossary("EP1000001A1")}
        assert glossary["12"].term == "thermal head" and glossary["16"].term == "platen roller"
        assert "2005" not in glossary and "2" not in glossary
        assert figure_sentences(coll, fig)[0] == "FIG. 1 is a side view of a printer."
    assert report.figures == 5  # the cut figures are read with their sheet


def test_a_sheet_with_two_figures_is_split_and_not_searched_twice(built):
    root, _ = built
    with Collection.open(root) as coll:
        sheet = coll.figure("EP1000001A1-f0002")
        assert sheet.role == FigureRole.SPLIT_SHEET
        children = {f.figure_id: f for f in coll.figures(patent="EP1000001A1") if f.parent_id == sheet.figure_id}
        assert set(children) == {"EP1000001A1-f0002-fig1", "EP1000001A1-f0002-fig2"}
        one, two = children["EP1000001A1-f0002-fig1"], children["EP1000001A1-f0002-fig2"]
        assert one.role == FigureRole.DRAWING and one.label == "FIG. 1" and two.description.startswith("FIG. 2 is")
        assert {s.text for s in coll.signs.of(one.figure_id) if s.kind == "numeral"} == {"12", "38"}
        signs_two = [s for s in coll.signs.of(two.figure_id) if s.kind == "numeral"]
        assert {s.text for s in signs_two} == {"14a", "102"}
        assert all(0 <= s.box[0] < s.box[2] <= two.width for s in signs_two)  # in the cut figure's own pixels
        assert coll.path(two.image_path).is_file()
        searchable = coll.figures(roles=(FigureRole.DRAWING,))
        assert sheet.figure_id not in {f.figure_id for f in searchable}


def test_blank_unreadable_and_textless_give_notes_not_crashes(built):
    root, report = built
    with Collection.open(root) as coll:
        assert coll.signs.of("EP1000001A1-f0003") == []
        assert coll.links.links_of("EP1000001A1-f0003") == []
        assert coll.signs.notes_of("EP1000001A1-f0003") == ["no reference signs or labels found in the drawing"]
        assert coll.links.links_of("EP1000001A1-f0004") == []
        assert coll.signs.notes_of("EP1000001A1-f0004")[0].startswith("image unreadable")
        us = "US2000001A1-D00001"
        assert {s.text for s in coll.signs.of(us)} == {"12", "16"}  # nothing to check them against
        assert coll.links.links_of(us) == []
        assert coll.signs.notes_of(us) == ["patent has no description: no sentences to link"]
    assert set(report.notes) >= {"EP1000001A1-f0003", "EP1000001A1-f0004", "US2000001A1-D00001"}


def test_a_rerun_reads_nothing_and_a_changed_text_is_relinked(built, tmp_path):
    root, _ = built
    with Collection.open(root, write=True) as coll:
        assert spot_and_link(coll).figures == 0
        images = {f.figure_id.split("-")[1]: coll.path(f.image_path) for f in coll.figures(patent="EP1000001A1")
                  if f.parent_id is None and f.figure_id.endswith("f0001")}
        image = Image.open(images["f0001"])
        changed = DESCRIPTION + ["The platen roller 16 is made of rubber."]
        add(coll, "EP1000001A1", changed, {"f0001": image, "f0002": Image.open(coll.path("images/EP1000001A1/f0002.png")),
                                           "f0003": Image.new("L", (900, 1200), 255), "f0004": b"not a png at all"})
        report = spot_and_link(coll)
        assert report.relinked_patents == 1
        texts = {t for _, t in coll.links.links_of("EP1000001A1-f0001")}
        assert "The platen roller 16 is made of rubber." in texts
        # the unchanged split sheet keeps its role and its cut figures
        assert coll.figure("EP1000001A1-f0002").role == FigureRole.SPLIT_SHEET
        assert coll.figure("EP1000001A1-f0002-fig1").label == "FIG. 1"


def test_show_prints_signs_glossary_and_sentences(built):
    root, _ = built
    runner = CliRunner()
    result = runner.invoke(main, ["show", "--collection", str(root), "EP1000001A1 FIG. 1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["figure_id"] == "EP1000001A1-f0001"
    assert data["reference_signs"] == ["7", "10", "12", "16", "22", "24"]
    assert data["glossary"]["12"] == "thermal head"
    assert any("platen roller 16" in s["text"] for s in data["sentences"])
    plain = runner.invoke(main, ["show", "-c", str(root), "EP1000001A1-f0002-fig2"])
    assert plain.exit_code == 0 and "14a" in plain.output and "FIG. 2" in plain.output
    missing = runner.invoke(main, ["show", "-c", str(root), "EP1000001A1 FIG. 9"])
    assert missing.exit_code == 2 and "no figure labelled FIG. 9" in missing.output


def test_ocr_command_reports_and_is_resumable(tmp_path):
    root = tmp_path / "c"
    with Collection.open(root, create=True) as coll:
        add(coll, "EP1000002A1", DESCRIPTION[:2], {"f0001": drawing(["10", "12"], "FIG. 1")})
    runner = CliRunner()
    first = runner.invoke(main, ["ocr", "-c", str(root), "--no-progress"])
    assert first.exit_code == 0 and "read 1 figures" in first.output, first.output
    again = runner.invoke(main, ["ocr", "-c", str(root), "--no-progress"])
    assert "read 0 figures" in again.output
    redo = runner.invoke(main, ["ocr", "-c", str(root), "--no-progress", "--redo"])
    assert "read 1 figures" in redo.output
    bad = runner.invoke(main, ["ocr", "-c", str(root), "--engine", "nope"])
    assert bad.exit_code == 2 and "tesseract" in bad.output


def _stored_reading(root) -> list[tuple]:
    with Collection.open(root) as coll:
        signs = coll.db.execute("SELECT figure_id, text, kind FROM reference_signs ORDER BY 1, 2, 3").fetchall()
        links = coll.db.execute("SELECT figure_id, sentence_idx FROM figure_sentences ORDER BY 1, 2").fetchall()
        figures = coll.db.execute("SELECT figure_id, label, role FROM figures ORDER BY 1").fetchall()
        words = [(f, w.text, w.line) for (f,) in coll.db.execute("SELECT figure_id FROM figures ORDER BY 1")
                 for w in coll.words.of(f)]
    return [tuple(r) for r in signs + links + figures] + words


def test_worker_processes_store_exactly_what_one_process_stores(tmp_path, monkeypatch):
    from figsearch.pipeline import signs as pipeline

    monkeypatch.setattr(pipeline, "_MIN_PER_WORKER", 1)  # workers even for a handful of drawings
    images = {f"f{i:04d}": drawing([str(10 + 2 * i), "12"], f"FIG. {i}") for i in range(1, 5)}
    images["f0005"] = two_figures(["12", "38"], ["14a", "102"])
    images["f0006"] = b"not a png at all"
    images["f0007"] = block_diagram(["IMAGE PROCESSING UNIT", "PRINTER"])
    roots = []
    for jobs in (1, 2):
        root = tmp_path / f"jobs{jobs}"
        with Collection.open(root, create=True) as coll:
            add(coll, "EP1000003A1", DESCRIPTION, images)
            report = spot_and_link(coll, jobs=jobs)
        assert report.figures == 7 and report.split_sheets == 1
        roots.append(root)
    assert _stored_reading(roots[0]) == _stored_reading(roots[1])
    assert ("EP1000003A1-f0002", "12", "numeral") in _stored_reading(roots[1])  # read by a worker
    assert ("EP1000003A1-f0007", "PRINTER") in {row[:2] for row in _stored_reading(roots[1])}


def _words(coll: Collection, figure_id: str) -> list[str]:
    return [w.text for w in coll.words.of(figure_id)]


def test_the_words_of_a_drawing_are_stored_with_it_and_its_cut_figures(tmp_path):
    root = tmp_path / "c"
    with Collection.open(root, create=True) as coll:
        add(coll, "EP1000004A1", DESCRIPTION, {
            "f0001": block_diagram(["IMAGE PROCESSING UNIT", "PRINTER", "CONTROL CIRCUIT"]),
            "f0002": two_block_diagrams(["SENSOR", "MEMORY"], ["DISPLAY", "CAMERA"]),
        })
        report = spot_and_link(coll)
        words = _words(coll, "EP1000004A1-f0001")
        assert words == ["IMAGE", "PROCESSING", "UNIT", "PRINTER", "CONTROL", "CIRCUIT"]
        assert {w.line for w in coll.words.of("EP1000004A1-f0001")[:3]} == {coll.words.of("EP1000004A1-f0001")[0].line}
        assert not {"10", "12", "FIG.", "1"} & set(words)  # signs and labels are not words
        # the split sheet keeps all its words; each cut figure gets its own, in its own pixels
        assert set(_words(coll, "EP1000004A1-f0002")) == {"SENSOR", "MEMORY", "DISPLAY", "CAMERA"}
        assert _words(coll, "EP1000004A1-f0002-fig1") == ["SENSOR", "MEMORY"]
        two = coll.figure("EP1000004A1-f0002-fig2")
        assert _words(coll, two.figure_id) == ["DISPLAY", "CAMERA"]
        assert all(0 <= w.box[0] < w.box[2] <= two.width for w in coll.words.of(two.figure_id))
        assert report.words == 10
        # a redo reads again and replaces: the same words, never doubled
        spot_and_link(coll, redo=True)
        assert _words(coll, "EP1000004A1-f0001") == words and coll.words.count() == 6 + 4 + 4


def test_a_figure_whose_writing_fails_keeps_no_words_and_is_read_again(tmp_path, monkeypatch):
    root = tmp_path / "c"
    with Collection.open(root, create=True) as coll:
        add(coll, "EP1000005A1", DESCRIPTION, {"f0001": block_diagram(["IMAGE PROCESSING UNIT"])})

        def killed(*args, **kwargs):
            raise KeyboardInterrupt("killed while writing")

        monkeypatch.setattr(coll.signs, "mark_done", killed)  # the last write of the figure's transaction
        with pytest.raises(KeyboardInterrupt):
            spot_and_link(coll)
        assert coll.words.count() == 0 and coll.signs.of("EP1000005A1-f0001") == []
        assert coll.signs.pending() == ["EP1000005A1-f0001"]
        monkeypatch.undo()
        assert spot_and_link(coll).figures == 1
        assert _words(coll, "EP1000005A1-f0001") == ["IMAGE", "PROCESSING", "UNIT"]
