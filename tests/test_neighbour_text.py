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


# from US2-C (60°): the visual list B and D (cos 30°), E (cos 50°, no text), A (cos 60°); C's own text is "rotor"
V_C = {"US1-B": math.cos(math.radians(30)), "US2-D": math.cos(math.radians(30)),
       "EP3-E": math.cos(math.radians(50)), "US1-A": 0.5}
TEXT_C = {"US1-B": TEXT["US1-B"], "US2-D": TEXT["US2-D"], "US1-A": np.array([1, 1, 0, 0.0]) / math.sqrt(2)}


def by_hand() -> dict[str, float]:
    """B, D and A (the first three with text) lend theirs, weighted cos^3; E, without text, scores its visual
    cosine alone (stop 24), not 0.4 times it."""
    lent = sum(V_C[f] ** neighbour_text.ALPHA * TEXT_C[f] for f in TEXT_C)
    lent = lent / np.linalg.norm(lent)
    w = neighbour_text.WEIGHT
    return {f: (1 - w) * V_C[f] + w * float(TEXT_C[f] @ lent) if f in TEXT_C else V_C[f] for f in V_C}


def test_the_text_channel_is_searched_with_the_neighbours_texts(service):
    result = service.search(Query(figure_id="US2-C", mode="visual", neighbour_text=True, rerank=False, k=10))
    expected = sorted(by_hand().items(), key=lambda x: -x[1])
    assert [h.figure_id for h in result.hits] == [f for f, _ in expected]
    assert [h.score for h in result.hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    # the query figure's own text ("rotor") is not used: with it B ("hub") would score 0 for text
    assert result.mode == "visual" and result.modalities == ["visual", "text"]
    assert any(note.startswith("neighbour_text: the text channel searched with the texts of") and
               {"US1-B", "US2-D", "US1-A"} <= set(note.replace(",", " ").split()) for note in result.notes)
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
    # and no note says the mode had only the visual channel (it had, until the texts were lent)
    assert not any("has only the" in note for note in lent.notes), lent.notes
    same = service.search(Query(figure_id="EP3-E", mode="visual", neighbour_text=True, k=10))
    assert [(h.figure_id, round(h.score, 6)) for h in lent.hits] == [(h.figure_id, round(h.score, 6)) for h in same.hits]
    # by default (stop 24) auto lends too; asked not to, it ranks it by the visual channel alone, as visual does
    default = service.search(Query(figure_id="EP3-E", mode="auto", k=10))
    assert [(h.figure_id, h.score) for h in default.hits] == [(h.figure_id, h.score) for h in lent.hits]
    alone = service.search(Query(figure_id="EP3-E", mode="auto", neighbour_text=False, k=10))
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


def mixed_service(root):
    """A collection mixing figures with and without text: US9's three sheets (40°, 42°, 44°) have none, as the
    shared data's design PDFs; the other patents have titles or descriptions."""
    from _search_helpers import add_patent

    with Collection.open(root, create=True) as c:
        add_patent(c, "US9", [("P1", 40, None), ("P2", 42, None), ("P3", 44, None)])
        add_patent(c, "US5", [("X", 50, "rotor blade"), ("Y", 70, "rotor hub")])
        add_patent(c, "US6", [("Z", 30, "blade"), ("W", 0, "hub")])
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    return SearchService.open(root)


def test_a_drawing_among_its_own_textless_sheets_is_searched_by_its_look(tmp_path):
    with mixed_service(tmp_path / "mixed") as s:
        for mode in ("visual", "auto"):
            alone = s.search(Query(figure_id="US9-P1", mode=mode, neighbour_text=False, k=10))
            asked = s.search(Query(figure_id="US9-P1", mode=mode, neighbour_text=True, k=10))
            # its nearest figure (its own sheet P2) has no text: nothing is lent, its own sheets stay first
            assert asked.modalities == ["visual"] and "neighbour_text" in asked.timings
            assert any("nearest figure has no text" in note for note in asked.notes)
            assert [(h.figure_id, h.score) for h in asked.hits] == [(h.figure_id, h.score) for h in alone.hits]
            assert [h.figure_id for h in asked.hits][:2] == ["US9-P2", "US9-P3"]
        upload = s.search(Query(image=angle_image(41), mode="auto", neighbour_text=True, k=10))
        assert upload.modalities == ["visual"] and [h.patent for h in upload.hits][:3] == ["US9"] * 3


def test_figures_without_text_keep_their_visual_scores_when_texts_are_lent(tmp_path):
    with mixed_service(tmp_path / "mixed") as s:
        # an upload at 48°: its nearest figure X (50°) has text, so the neighbours lend theirs
        lent = s.search(Query(image=angle_image(48), mode="visual", neighbour_text=True, rerank=False, k=10))
        plain = s.search(Query(image=angle_image(48), mode="visual", rerank=False, k=10))
        assert lent.modalities == ["visual", "text"]
        visual = {h.figure_id: h.score for h in plain.hits}
        hits = {h.figure_id: h for h in lent.hits}
        for sheet in ("US9-P1", "US9-P2", "US9-P3"):  # no text: scored by the look alone, not 0.4 times it
            assert set(hits[sheet].scores) == {"visual"} and hits[sheet].score == pytest.approx(visual[sheet], abs=1e-6)
        w = neighbour_text.WEIGHT
        for figure in ("US5-X", "US5-Y", "US6-Z", "US6-W"):
            scores = hits[figure].scores
            assert hits[figure].score == pytest.approx((1 - w) * scores["visual"] + w * scores["text"], abs=1e-6)
        # the textless sheets stay in their visual order among themselves, and P3 (4° away) above W (48° away)
        order = [h.figure_id for h in lent.hits]
        assert order.index("US9-P3") < order.index("US9-P2") < order.index("US9-P1") < order.index("US6-W")


def test_lends_reads_the_first_gate_figures():
    texts = {"a": np.zeros(2), "b": np.zeros(2)}
    assert neighbour_text.lends([("a", 0.9), ("x", 0.8)], texts, gate=1)
    assert not neighbour_text.lends([("x", 0.9), ("a", 0.8)], texts, gate=1)
    assert not neighbour_text.lends([("a", 0.9), ("x", 0.8)], texts, gate=2)
    assert neighbour_text.lends([("a", 0.9), ("b", 0.8), ("x", 0.7)], set(texts), gate=2)
    assert not neighbour_text.lends([], texts, gate=1) and neighbour_text.lends([], texts, gate=0)
    assert neighbour_text.lends([("a", 0.9)], texts) == (neighbour_text.GATE <= 1)
