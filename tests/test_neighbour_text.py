"""``Query.neighbour_text``: a drawing searched without words borrows the texts of its nearest drawings
(search/neighbour_text.py), on the hand-computed collection of test_search_service.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import angle_image, hand_collection, hand_service

from figsearch.errors import InputError
from figsearch.pipeline.index import update_collection
from figsearch.search import neighbour_text
from figsearch.search.query import Query
from figsearch.search.service import SearchService
from figsearch.store import Collection

# fake-angle: visual cosine = cos(angle difference) from US1-A (0°); fake-words: counts of rotor, blade, hub
V = {"US1-B": math.cos(math.radians(30)), "US2-C": 0.5, "US2-D": 0.0, "EP3-E": math.cos(math.radians(10))}
TEXT = {"US1-B": np.array([0, 0, 1, 0.0]), "US2-C": np.array([1, 0, 0, 0.0]),
        "US2-D": np.array([1, 1, 1, 0.0]) / math.sqrt(3)}  # EP3-E has no text; US1-A's own is "rotor blade"


@pytest.fixture
def service(collection_dir):
    with hand_service(collection_dir) as s:
        yield s


def by_hand() -> dict[str, float]:
    """The visual list E B C D; E has no text, so B, C, D lend theirs, weighted cos^3 (D's cos 0 weighs 0)."""
    lenders = ["US1-B", "US2-C", "US2-D"]
    lent = sum(max(V[f], 0.0) ** neighbour_text.ALPHA * TEXT[f] for f in lenders)
    lent = lent / np.linalg.norm(lent)
    w = neighbour_text.WEIGHT
    return {f: (1 - w) * V[f] + w * (float(TEXT[f] @ lent) if f in TEXT else 0.0) for f in V}


def test_the_text_channel_is_searched_with_the_neighbours_texts(service):
    result = service.search(Query(figure_id="US1-A", mode="visual", neighbour_text=True, rerank=False, k=10))
    expected = sorted(by_hand().items(), key=lambda x: -x[1])
    assert [h.figure_id for h in result.hits] == [f for f, _ in expected]
    assert [h.score for h in result.hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    # the query figure's own text ("rotor blade") is not used: with it B (no word in common) would score 0 for text
    assert result.mode == "visual" and result.modalities == ["visual", "text"]
    assert any("US1-B, US2-C, US2-D" in note for note in result.notes)
    assert "neighbour_text" in result.timings
    hits = {h.figure_id: h for h in result.hits}
    assert set(hits["US1-B"].scores) == {"visual", "text"} and set(hits["EP3-E"].scores) == {"visual"}


def test_an_uploaded_drawing_borrows_texts_too(service):
    plain = service.search(Query(image=angle_image(0), mode="visual", rerank=False, k=10))
    lent = service.search(Query(image=angle_image(0), mode="visual", neighbour_text=True, rerank=False, k=10))
    assert plain.modalities == ["visual"] and lent.modalities == ["visual", "text"]
    assert [h.figure_id for h in plain.hits][0] == "US1-A"  # the drawing itself, the best visual match
    assert {h.figure_id for h in lent.hits} >= {h.figure_id for h in plain.hits}
    # re-ranked by default in the visual mode, with the text channel beside it
    assert service.search(Query(image=angle_image(0), mode="visual", neighbour_text=True, k=10)).modalities == [
        "visual", "text"]


def test_neighbour_text_is_an_option_of_the_visual_and_auto_modes_only(service):
    with pytest.raises(InputError, match="option of the modes .visual. and .auto."):
        service.search(Query(figure_id="US1-A", mode="avg", neighbour_text=True))


def test_without_a_text_index_the_drawing_is_searched_alone(tmp_path):
    root = tmp_path / "notext"
    hand_collection(root)
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="none")
    with SearchService.open(root) as s:
        result = s.search(Query(figure_id="US1-A", mode="visual", neighbour_text=True, rerank=False, k=10))
        assert result.modalities == ["visual"]
        assert [round(h.score, 6) for h in result.hits] == sorted((round(v, 6) for v in V.values()), reverse=True)
        assert any("no text index" in note for note in result.notes)


def test_text_vector_weights_and_empty_cases():
    texts = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    vector, lenders = neighbour_text.text_vector([("x", 0.9), ("a", 0.5), ("b", 0.25)], texts, neighbours=2, alpha=1.0)
    assert lenders == ["a", "b"] and vector == pytest.approx(np.array([2.0, 1.0]) / math.sqrt(5))
    assert neighbour_text.text_vector([("x", 0.9)], texts) == (None, [])  # no neighbour has text
    assert neighbour_text.text_vector([("a", -0.3)], texts) == (None, [])  # every weight 0


def test_auto_lends_only_to_a_drawing_without_text_of_its_own(service):
    # EP3-E has no text vector: asked to, in auto it borrows its neighbours' texts as the visual mode does
    lent = service.search(Query(figure_id="EP3-E", mode="auto", neighbour_text=True, k=10))
    assert lent.mode == "auto" and lent.modalities == ["visual", "text"]
    assert any(note.startswith("neighbour_text:") for note in lent.notes)
    same = service.search(Query(figure_id="EP3-E", mode="visual", neighbour_text=True, k=10))
    assert [(h.figure_id, round(h.score, 6)) for h in lent.hits] == [(h.figure_id, round(h.score, 6)) for h in same.hits]
    # by default (off), auto ranks it by the visual channel alone, as the visual mode does
    alone = service.search(Query(figure_id="EP3-E", mode="auto", k=10))
    visual = service.search(Query(figure_id="EP3-E", mode="visual", k=10))
    assert alone.modalities == ["visual"] and [h.figure_id for h in alone.hits] == [h.figure_id for h in visual.hits]
    # US1-A has text of its own: auto fuses it as before, nothing is lent
    own = service.search(Query(figure_id="US1-A", mode="auto", neighbour_text=True, k=10))
    assert not any(note.startswith("neighbour_text:") for note in own.notes)
    assert own.modalities == ["visual", "text"] and "neighbour_text" not in own.timings
    # the visual mode stays the visual channel alone unless asked
    assert service.search(Query(figure_id="EP3-E", mode="visual", k=10)).modalities == ["visual"]


def test_evaluation_sets_the_option_only_where_a_mode_takes_it(service):
    from figsearch.evaluate.experiment import QueryOptions

    backend = QueryOptions(service, neighbour_text=True)
    assert backend.search(Query(figure_id="EP3-E", mode="avg", k=10)).modalities == ["visual"]
    assert backend.search(Query(figure_id="EP3-E", mode="visual", k=10)).modalities == ["visual", "text"]
