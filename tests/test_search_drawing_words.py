"""The words printed in an uploaded drawing become its text: service, CLI, HTTP, details (fake encoders)."""

from __future__ import annotations

import io
import json
import math

import pytest
from _search_helpers import angle_image, indexed_hand_collection
from click.testing import CliRunner

from figsearch.errors import InputError
from figsearch.link.text import words_text
from figsearch.records import DrawingWord
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.search.words import DrawingReader
from figsearch.store import Collection


class FakeReader:
    """Reads the words it was given, and counts its calls."""

    unavailable = None

    def __init__(self, words: list[str]) -> None:
        self.words = [DrawingWord(w, (0, 0, 4, 2), 0.95, line) for line, w in enumerate(words)]
        self.calls = 0

    def read(self, image):
        self.calls += 1
        return list(self.words)


@pytest.fixture
def indexed(collection_dir):
    return indexed_hand_collection(collection_dir)


def service(root, words):
    return SearchService(Collection.open(root), owns=True, reader=FakeReader(words))


def test_words_text_joins_lines_into_phrases():
    words = [DrawingWord("IMAGE", line=3), DrawingWord("PROCESSING", line=3), DrawingWord("UNIT", line=3),
             DrawingWord("PRINTER", line=5), DrawingWord("IMAGE", line=7), DrawingWord("PROCESSING", line=7),
             DrawingWord("UNIT", line=7)]
    assert words_text(words) == "image processing unit; printer"  # a phrase read twice counts once
    assert words_text(["Start", "End"]) == "start; end" and words_text([]) is None


def test_an_uploaded_drawing_is_searched_by_its_words_in_text_mode(indexed):
    with service(indexed, ["hub"]) as s:
        result = s.search(Query(image=angle_image(3), mode="text", k=3))
        assert result.query_words == ["hub"] and result.modalities == ["text"]
        # text vectors: B "hub" = (0,0,1,0), D "rotor blade hub" = (1,1,1,0)/√3
        assert [(h.figure_id, round(h.score, 6)) for h in result.hits][:2] == [("US1-B", 1.0), ("US2-D", round(1 / math.sqrt(3), 6))]
        assert s.reader.calls == 1


def test_typed_text_and_read_words_count_alike(indexed):
    with service(indexed, ["hub"]) as s:
        result = s.search(Query(image=angle_image(3), text="rotor", mode="text", k=5))
        # query = mean of (1,0,0,0) and (0,0,1,0): C "rotor" and B "hub" tie at 1/√2, D = 2/√6
        scores = {h.figure_id: round(h.score, 6) for h in result.hits}
        assert scores["US2-D"] == round(2 / math.sqrt(6), 6)
        assert scores["US2-C"] == scores["US1-B"] == round(1 / math.sqrt(2), 6)
        assert result.query_words == ["hub"]


def test_words_are_not_read_when_no_text_is_used(indexed):
    with service(indexed, ["hub"]) as s:
        visual = s.search(Query(image=angle_image(58), mode="visual", k=1))
        assert visual.query_words == [] and s.reader.calls == 0
        off = s.search(Query(image=angle_image(58), mode="avg", k=1, read_words=False))
        assert off.query_words == [] and off.modalities == ["visual"] and s.reader.calls == 0
        both = s.search(Query(image=angle_image(58), mode="avg", k=5))
        assert both.modalities == ["visual", "text"] and s.reader.calls == 1


def test_a_drawing_without_words_in_text_mode_says_so(indexed):
    with service(indexed, []) as s:
        with pytest.raises(InputError, match="none that could be searched with were read in this one"):
            s.search(Query(image=angle_image(3), mode="text"))
        result = s.search(Query(image=angle_image(58), mode="avg", k=1))  # visual alone, as before
        assert result.modalities == ["visual"] and result.query_words == []


def test_figure_details_carry_the_drawing_words(indexed):
    with Collection.open(indexed, write=True) as c:
        c.words.write("US1-A", [DrawingWord("ROTOR", (1, 2, 30, 12), 0.9, 2), DrawingWord("HUB", (1, 20, 30, 30), 0.9, 3)])
    with service(indexed, []) as s:
        details = s.figure_details("US1-A")
        assert [w.text for w in details.words] == ["ROTOR", "HUB"]
        assert s.figure_details("US1-B").words == []
    out = CliRunner().invoke(_main(), ["show", "-c", str(indexed), "US1-A", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["words"] == ["ROTOR", "HUB"]
    plain = CliRunner().invoke(_main(), ["show", "-c", str(indexed), "US1-A"])
    assert "words in the drawing: ROTOR HUB" in plain.output


def _main():
    from figsearch.cli import main

    return main


def test_http_upload_says_which_words_were_read_and_figures_show_theirs(indexed):
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from server_fake import make_client

    with Collection.open(indexed, write=True) as c:
        c.words.write("US2-D", [DrawingWord("BLADE", (1, 2, 30, 12), 0.9, 1)])
    with service(indexed, ["hub"]) as s:
        client, _ = make_client(indexed, backend=s)
        data = io.BytesIO()
        angle_image(3).save(data, format="PNG")
        body = client.post("/api/search", files={"image": ("d.png", data.getvalue(), "image/png")},
                           data={"mode": "text", "k": "2"}).json()
        assert body["query"]["words"] == ["hub"] and body["hits"][0]["figure_id"] == "US1-B"
        off = client.post("/api/search", files={"image": ("d.png", data.getvalue(), "image/png")},
                          data={"mode": "visual", "k": "2"}).json()
        assert off["query"]["words"] == []
        details = client.get("/api/figures/US2-D").json()
        assert details["words"] == [{"text": "BLADE", "box": [1, 2, 30, 12], "confidence": 0.9, "line": 1}]


def test_the_real_reader_reads_a_block_diagram_upload(indexed, tmp_path):
    pytest.importorskip("tesserocr")
    from ocr_drawings import block_diagram

    path = tmp_path / "upload.png"
    block_diagram(["ROTOR BLADE"], numerals=("10",)).save(path)
    with SearchService(Collection.open(indexed), owns=True, reader=DrawingReader()) as s:
        result = s.search(Query(image=path.read_bytes(), mode="text", k=2))
        assert result.query_words == ["ROTOR", "BLADE"]  # the numeral and the label are not words
        assert result.hits[0].figure_id == "US1-A"  # "rotor blade"
    out = CliRunner().invoke(_main(), ["search", "-c", str(indexed), "--image", str(path), "--mode", "text", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["query_words"] == ["ROTOR", "BLADE"] and data["hits"][0]["figure_id"] == "US1-A"
    off = CliRunner().invoke(_main(), ["search", "-c", str(indexed), "--image", str(path), "--mode", "avg",
                                       "--no-read-words", "--json"])
    assert json.loads(off.output)["query_words"] == [] and json.loads(off.output)["modalities"] == ["visual"]


def test_a_real_block_diagram_sheet_is_read_for_its_words(indexed, shared_data):
    pytest.importorskip("tesserocr")
    from PIL import Image

    from figsearch.ocr import create_engine
    from figsearch.pipeline.signs import drawing_words

    sheet = shared_data / "ep-documents" / "EP1667425A1" / "imgf0002.tif"
    with Image.open(sheet) as image:
        image.load()
        stored = drawing_words(image, create_engine("tesseract").read(image))  # what the sign stage stores
    phrase = words_text(stored)
    assert "image processing unit" in phrase and "recording control unit" in phrase
    with SearchService(Collection.open(indexed), owns=True, reader=DrawingReader()) as s:
        result = s.search(Query(image=sheet.read_bytes(), mode="text", k=1))
    assert result.query_words == [w.text for w in stored]  # an upload is read as the stage reads it


def test_the_lines_of_one_lettered_box_make_one_phrase():
    words = [DrawingWord("RECORDING", (100, 100, 220, 120), 0.9, 1), DrawingWord("PRINTER", (600, 100, 700, 120), 0.9, 2),
             DrawingWord("CONTROL", (90, 128, 180, 148), 0.9, 3), DrawingWord("UNIT", (185, 128, 230, 148), 0.9, 3),
             DrawingWord("MEMORY", (100, 400, 200, 420), 0.9, 4)]
    assert words_text(words) == "recording control unit; printer; memory"


def test_warm_loads_the_engine_model_and_a_model_that_fails_means_no_words(monkeypatch):
    from figsearch.errors import ModelUnavailable
    from figsearch.search import words

    loaded = []

    class Engine:
        def load(self):
            loaded.append(True)

    reader = words.DrawingReader()
    monkeypatch.setattr(reader, "_get", lambda: Engine())
    assert reader.warm() is True and loaded == [True]

    class Broken:
        def load(self):
            raise ModelUnavailable("eng.traineddata: cannot be loaded")

    broken = words.DrawingReader()
    broken._engine = Broken()
    assert broken.warm() is False
    assert "eng.traineddata" in broken.unavailable and broken._engine is None


def test_words_too_short_to_mean_anything_are_not_searched_with(indexed):
    # "FI" is what OCR leaves of a label cut at the sheet's edge; "if" a stray reading: neither is the drawing's text
    with service(indexed, ["FI", "if"]) as s:
        result = s.search(Query(image=angle_image(58), mode="avg", k=1))
        assert result.modalities == ["visual"] and result.query_words == ["FI", "if"]
        assert any("too short to search with" in note for note in result.notes)
        with pytest.raises(InputError, match="none that could be searched with"):
            s.search(Query(image=angle_image(3), mode="text"))
    with service(indexed, ["hub", "A"]) as s:  # one word long enough: all of them count, as before
        result = s.search(Query(image=angle_image(3), mode="text", k=1))
        assert result.modalities == ["text"] and not any("too short" in n for n in result.notes)
