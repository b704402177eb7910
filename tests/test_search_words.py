"""Words -> drawings: a text query searches the visual index when the visual encoder has a text adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import AngleEncoder, add_patent

from figsearch.embed.base import VISUAL_ENCODERS
from figsearch.errors import InputError, ModelUnavailable
from figsearch.pipeline.index import update_collection
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection

#: the fake adapter's reading of words: each word names an angle; other words mean nothing
ANGLES = {"rotor": 0, "blade": 45, "hub": 90}


class AngleWordsEncoder(AngleEncoder):
    """``fake-angle`` drawings plus a text adapter: a word's angle, from the sentence encoder's counts."""

    name = "fake-angle-words"
    text_model = "fake-words"

    def encode_text_query(self, texts, text_encoder=None):
        counts = text_encoder.encode(list(texts))[:, : len(ANGLES)]  # fake-words: rotor, blade, hub counts
        if not counts.any():
            raise ModelUnavailable("no word of this query is known to the adapter")
        angles = np.radians(np.array(list(ANGLES.values()), np.float32))
        rows = counts @ np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


if "fake-angle-words" not in VISUAL_ENCODERS:
    VISUAL_ENCODERS.register("fake-angle-words", help="test encoder")(AngleWordsEncoder)


def build(root, visual_model: str, text_model: str) -> None:
    """Drawings at 0°, 40° and 85° with no text at all; one patent with a described drawing at 20°."""
    with Collection.open(root, create=True) as c:
        add_patent(c, "US1", [("A", 0, None), ("B", 40, None)])
        add_patent(c, "US2", [("C", 85, None)])
        add_patent(c, "US3", [("D", 20, "rotor hub")], title="rotor hub")
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model=visual_model, text_model=text_model)


def ids(result):
    return [h.figure_id for h in result.hits]


def test_words_find_drawings_that_have_no_text(tmp_path):
    build(tmp_path / "c", "fake-angle-words", "none")  # a visual-only collection: nothing has text
    with SearchService.open(tmp_path / "c") as service:
        hub = service.search(Query(text="hub", mode="visual", k=4, rerank=False))  # plain cosines
        assert ids(hub) == ["US2-C", "US1-B", "US3-D", "US1-A"]  # nearest to 90°
        assert hub.hits[0].score == pytest.approx(math.cos(math.radians(5)), abs=1e-6)
        assert ids(service.search(Query(text="rotor", mode="visual", k=1))) == ["US1-A"]
        # a fused mode in a collection without text vectors searches the drawings alone
        auto = service.search(Query(text="blade", k=2))
        assert ids(auto) == ["US1-B", "US3-D"] and auto.modalities == ["visual"]
        assert any("no text vectors" in note for note in auto.notes)


def test_a_fused_text_query_also_searches_the_drawings_by_words(tmp_path):
    build(tmp_path / "c", "fake-angle-words", "fake-words")
    with SearchService.open(tmp_path / "c") as service:
        result = service.search(Query(text="hub", mode="avg", k=10))
        assert result.modalities == ["visual", "text"]
        assert any("text adapter" in note for note in result.notes)
        # the drawings without text are found too; the text channel alone finds only US3-D
        assert set(ids(result)) == {"US1-A", "US1-B", "US2-C", "US3-D"}
        assert ids(service.search(Query(text="hub", mode="text", k=10))) == ["US3-D"]
        # a figure's own drawing stays the visual query: the words do not replace it
        by_figure = service.search(Query(figure_id="US1-A", text="hub", mode="visual", k=1))
        assert ids(by_figure) == ["US3-D"]


def test_an_encoder_without_a_text_adapter_is_named_in_a_clear_error(tmp_path):
    build(tmp_path / "c", "fake-angle", "fake-words")
    with SearchService.open(tmp_path / "c") as service:
        with pytest.raises(InputError, match="visual encoder 'fake-angle' .* cannot search drawings by words"):
            service.search(Query(text="hub", mode="visual"))
        # fused: the text channel alone, as before
        result = service.search(Query(text="hub", mode="auto", k=1))
        assert result.modalities == ["text"] and ids(result) == ["US3-D"]


def test_an_adapter_that_cannot_read_the_query_refuses_visual_mode_and_falls_back_in_fused_modes(tmp_path):
    build(tmp_path / "c", "fake-angle-words", "fake-words")
    with SearchService.open(tmp_path / "c") as service:
        with pytest.raises(InputError, match="no word of this query is known"):
            service.search(Query(text="propeller", mode="visual"))
        assert service.search(Query(text="rotor propeller", mode="auto", k=1)).modalities == ["visual", "text"]
        assert service.search(Query(text="propeller", mode="auto", k=1)).modalities == ["text"]


def test_a_fused_text_query_does_not_fail_when_the_visual_model_cannot_be_loaded(tmp_path, monkeypatch):
    build(tmp_path / "c", "fake-angle-words", "fake-words")
    with SearchService.open(tmp_path / "c") as service:
        def broken(*args, **kwargs):
            raise ModelUnavailable("model file /nowhere/model.onnx is missing")

        monkeypatch.setattr("figsearch.search.service.create_visual", broken)
        result = service.search(Query(text="hub", mode="auto", k=1))
        assert result.modalities == ["text"] and ids(result) == ["US3-D"]
        with pytest.raises(ModelUnavailable, match="/nowhere/model.onnx"):
            service.search(Query(text="hub", mode="visual"))


def test_auto_ranks_a_query_by_words_alone_with_the_word_thresholds_and_drawing_queries_as_before(tmp_path, monkeypatch):
    from figsearch.search import fusion, service as service_module

    build(tmp_path / "c", "fake-angle-words", "fake-words")
    given = []
    monkeypatch.setattr(service_module, "fuse", lambda lists, exact, **kwargs: given.append(kwargs) or
                        fusion.fuse(lists, exact, **kwargs))
    with SearchService.open(tmp_path / "c") as service:
        words = service.search(Query(text="rotor hub", mode="auto", k=4))
        assert words.modalities == ["visual", "text"]
        assert {k: given[-1][k] for k in fusion.WORDS_THRESHOLDS} == fusion.WORDS_THRESHOLDS
        # a drawing query, with or without words typed beside it, keeps the visual encoder's entry unchanged
        for query in (Query(figure_id="US3-D", mode="auto", k=4), Query(figure_id="US1-A", text="rotor", mode="auto", k=4)):
            given.clear()
            assert service.search(query).modalities == ["visual", "text"]
            assert len(given) == 1 and "agree_power" not in given[0]  # the fake encoder has no entry: no thresholds
            assert given[0]["far"] is None and given[0]["near"] is None
        # other modes never get them
        given.clear()
        service.search(Query(text="rotor hub", mode="avg", k=4))
        assert len(given) == 1 and "agree_power" not in given[0] and "far" not in given[0]
