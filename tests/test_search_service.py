"""The search service on a collection whose scores can be worked out by hand (fake encoders)."""

from __future__ import annotations

import io
import math

import pytest
from _search_helpers import CALLS, angle_image, hand_collection, hand_service

from figsearch.errors import CorruptInput, EmptyCollection, InputError, NotFound, UnsupportedFormat
from figsearch.pipeline.index import update_collection
from figsearch.search.query import Filters, Query
from figsearch.search.service import SearchService
from figsearch.store import Collection

# visual: cos of angle differences from A (0°); text: A is "rotor blade"
V = {"US1-B": math.cos(math.radians(30)), "US2-C": 0.5, "US2-D": 0.0, "EP3-E": math.cos(math.radians(10))}
T = {"US1-B": 0.0, "US2-C": 1 / math.sqrt(2), "US2-D": 2 / math.sqrt(6)}  # E has no text at all


@pytest.fixture
def service(collection_dir):
    with hand_service(collection_dir) as s:
        yield s


def ranked(result):
    return [(h.figure_id, round(h.score, 6)) for h in result.hits]


def expect(scores):
    return sorted(((f, round(s, 6)) for f, s in scores.items()), key=lambda x: (-x[1], x[0]))


def test_visual_and_text_modes_are_cosines(service):
    visual = service.search(Query(figure_id="US1-A", mode="visual", k=10, rerank=False))
    assert ranked(visual) == expect(V)
    text = service.search(Query(figure_id="US1-A", mode="text", k=10))
    assert ranked(text) == expect(T)  # E has no text vector, so no text score


def test_avg_max_rrf_and_weight_match_hand_computation(service):
    avg = {f: (V[f] + T.get(f, 0.0)) / 2 for f in V}  # no text vector counts 0
    assert ranked(service.search(Query(figure_id="US1-A", mode="avg", k=10))) == expect(avg)
    mx = {f: max(V[f], T[f]) if f in T else V[f] for f in V}  # a missing modality is left out
    assert ranked(service.search(Query(figure_id="US1-A", mode="max", k=10))) == expect(mx)
    # rrf: visual ranks E1 B2 C3 D4; text ranks D1 C2 B3; E is in no text list
    rrf = {"EP3-E": 1 / 61, "US1-B": 1 / 62 + 1 / 63, "US2-C": 1 / 63 + 1 / 62, "US2-D": 1 / 64 + 1 / 61}
    assert ranked(service.search(Query(figure_id="US1-A", mode="rrf", k=10))) == expect(rrf)
    weighted = {f: 0.75 * V[f] + 0.25 * T.get(f, 0.0) for f in V}
    assert ranked(service.search(Query(figure_id="US1-A", mode="avg", text_weight=0.25, k=10))) == expect(weighted)


def test_hits_carry_per_modality_scores_and_explanations(service):
    result = service.search(Query(figure_id="US1-A", mode="avg", k=10))
    hits = {h.figure_id: h for h in result.hits}
    assert set(hits["US1-B"].scores) == {"visual", "text"}
    assert hits["US1-B"].scores["visual"] == pytest.approx(V["US1-B"], abs=1e-6)
    assert set(hits["EP3-E"].scores) == {"visual"}
    assert hits["US2-D"].sentences == ["rotor blade hub"] and hits["US2-D"].label == "FIG. 1"
    assert result.modalities == ["visual", "text"] and result.total == 4


def test_front_pages_and_the_query_itself_never_come_back(service):
    ids = [h.figure_id for h in service.search(Query(figure_id="US1-B", mode="visual", k=50)).hits]
    assert "US1-F0" not in ids and "US1-B" not in ids and "US1-A" in ids


def test_paging_exclusion_and_filters(service):
    full = service.search(Query(figure_id="US1-A", mode="visual", k=10))
    page = service.search(Query(figure_id="US1-A", mode="visual", k=2, offset=1))
    assert [h.figure_id for h in page.hits] == [h.figure_id for h in full.hits[1:3]]
    assert [h.rank for h in page.hits] == [2, 3]

    def ids(**kwargs):
        query = Query(figure_id="US1-A", mode="visual", k=10, **kwargs)
        return sorted(h.figure_id for h in service.search(query).hits)

    assert ids(exclude_query_patent=True) == ["EP3-E", "US2-C", "US2-D"]
    assert ids(filters=Filters(office="ep")) == ["EP3-E"]
    assert ids(filters=Filters(date_from="2021-02", date_to="2021")) == ["US2-C", "US2-D"]
    assert ids(filters=Filters(classification_prefix="f03d7")) == ["US2-C", "US2-D"]
    assert ids(filters=Filters(exclude_patents=("US2",))) == ["EP3-E", "US1-B"]


def test_query_by_image_and_text(service):
    data = io.BytesIO()
    angle_image(58).save(data, format="PNG")
    result = service.search(Query(image=data.getvalue(), mode="visual", k=1))
    assert result.hits[0].figure_id == "US2-C"  # 60° is nearest to 58°
    text_only = service.search(Query(text="hub", mode="avg", k=1))
    assert text_only.hits[0].figure_id == "US1-B" and text_only.modalities == ["text"]
    assert any("only the text modality" in n for n in text_only.notes)
    both = service.search(Query(image=angle_image(88), text="hub", mode="avg", k=1))  # D .79 > B .77
    assert both.hits[0].figure_id == "US2-D"


def test_clear_errors(service, collection_dir, tmp_path):
    with pytest.raises(NotFound, match="unknown figure id 'nope'"):
        service.search(Query(figure_id="nope"))
    with pytest.raises(UnsupportedFormat, match="not an image"):
        service.search(Query(image=b"this is not an image at all"))
    png = io.BytesIO()
    angle_image(5, size=64).save(png, format="PNG")
    with pytest.raises(CorruptInput, match="query image: cannot decode image .truncated"):
        service.search(Query(image=png.getvalue()[:80]))
    with pytest.raises(CorruptInput, match="PDF"):
        service.search(Query(image=b"%PDF-1.4 broken"))
    with pytest.raises(InputError, match="unknown mode"):
        service.search(Query(figure_id="US1-A", mode="best"))
    with pytest.raises(InputError, match="at least one of"):
        service.search(Query(text="   "))
    with pytest.raises(InputError, match="mode 'text' needs"):
        service.search(Query(image=angle_image(3), mode="text"))
    with pytest.raises(InputError, match="not a date"):
        service.search(Query(figure_id="US1-A", filters=Filters(date_from="yesterday")))


def test_empty_collection_and_missing_text_vectors(collection_dir, tmp_path):
    with Collection.open(collection_dir, create=True):
        pass
    with SearchService.open(collection_dir) as empty:
        with pytest.raises(EmptyCollection, match="figsearch index"):
            empty.search(Query(image=angle_image(3), mode="visual"))
    root = tmp_path / "notext"
    hand_collection(root)
    with Collection.open(root, write=True) as c:
        update_collection(c, visual_model="fake-angle", text_model="none")
    with SearchService.open(root) as s:
        with pytest.raises(EmptyCollection, match="no text vectors"):
            s.search(Query(text="rotor", mode="avg"))
        result = s.search(Query(figure_id="US1-A", mode="avg", k=2))
        assert result.modalities == ["visual"] and result.hits[0].figure_id == "EP3-E"


def test_figure_details_and_info(service):
    details = service.figure_details("US2-D")
    assert details.figure.patent == "US2" and details.sentences[0].text == "rotor blade hub"
    assert details.sentences[0].reason == "brief_description"
    patent = service.patent_details("US1")
    assert [f.figure_id for f in patent.figures] == ["US1-F0", "US1-A", "US1-B"]
    info = service.info()
    assert info["indexes"]["visual"]["vectors"] == 5 and info["indexes"]["visual"]["factory"] == "Flat"
    assert info["indexes"]["text"]["vectors"] == 4 and info["encoders"]["text"]["spec"] == "fake-words"
    with pytest.raises(NotFound):
        service.figure_details("US9-Z")


def test_search_by_figure_runs_no_model(service):
    before = dict(CALLS)
    service.search(Query(figure_id="US1-A", mode="avg", k=3))
    assert CALLS == before


def test_zavg_and_auto_are_the_fusion_of_the_service_lists(service):
    from figsearch.search.fusion import fuse

    # every figure is in its lists: nothing to fill
    lists = {m: sorted(scores.items(), key=lambda x: -x[1]) for m, scores in (("visual", V), ("text", T))}
    for mode in ("zavg", "auto"):
        by_hand = fuse(lists, {}, mode=mode)
        # the plain lists (auto re-ranks its visual list by default since stop 22: test_rerank_options.py)
        got = service.search(Query(figure_id="US1-A", mode=mode, k=10, rerank=False)).hits
        assert [h.figure_id for h in got] == [f.figure_id for f in by_hand]
        assert [h.score for h in got] == pytest.approx([f.score for f in by_hand], abs=1e-5)


def test_rerank_rescores_the_visual_candidates_from_their_stored_vectors(service):
    import numpy as np

    from figsearch.search.rerank import rerank

    ids = [f for f, _ in expect(V)]  # E B C D
    angles = {"US1-A": 0, "US1-B": 30, "US2-C": 60, "US2-D": 90, "EP3-E": 10}
    vector = {f: np.array([math.cos(math.radians(a)), math.sin(math.radians(a))], np.float32) for f, a in angles.items()}
    new = rerank(vector["US1-A"], np.stack([vector[f] for f in ids]))
    got = service.search(Query(figure_id="US1-A", mode="visual", k=10, rerank=True)).hits
    by_hand = sorted(zip(ids, new.tolist()), key=lambda x: -x[1])
    assert [h.figure_id for h in got] == [f for f, _ in by_hand]
    assert [h.score for h in got] == pytest.approx([s for _, s in by_hand], abs=1e-5)
    plain = service.search(Query(figure_id="US1-A", mode="visual", k=10, rerank=False))
    assert ranked(plain) == expect(V)
    # the visual mode re-ranks when the query does not say (stop 20); the fused modes do not
    default = service.search(Query(figure_id="US1-A", mode="visual", k=10)).hits
    assert [(h.figure_id, h.score) for h in default] == [(h.figure_id, h.score) for h in got]


def test_a_readable_reference_names_a_design_patent_figure(tmp_path):
    """'USD0907292S1 FIG. 2': a US design number carries the series letter D before its digits."""
    from figsearch.records import Figure, Patent
    from figsearch.search.explain import resolve_figure
    from figsearch.store import Collection

    figures = [Figure(f"USD0907292S1-D0000{i}", "USD0907292S1", label=f"FIG. {i}", sequence=i) for i in (1, 2)]
    with Collection.open(tmp_path / "c", create=True) as collection:
        collection.upsert_patent(Patent("USD0907292S1", "US", "D0907292", "S1"), figures)
        assert resolve_figure(collection, "USD0907292S1 FIG. 2").figure_id == "USD0907292S1-D00002"
        assert resolve_figure(collection, "usd0907292s1, Fig. 1").figure_id == "USD0907292S1-D00001"
        # the patent alone is not read as 'USD0907292S' FIG. 1: the error says what to give instead
        with pytest.raises(NotFound, match=r"USD0907292S1 is a patent, not a figure: .*'USD0907292S1 FIG. 1'"):
            resolve_figure(collection, "USD0907292S1")
        # a patent the collection lacks: said so (it read "patent USD0907293S has no figure labelled FIG. 1")
        with pytest.raises(NotFound, match=r"no patent or figure USD0907293S1 in collection "):
            resolve_figure(collection, "usd0907293s1")
        with pytest.raises(NotFound, match=r"no patent USD0907293S1 in collection .*\(asked for 'USD0907293S1 FIG. 2'\)"):
            resolve_figure(collection, "USD0907293S1 FIG. 2")


def test_a_file_of_several_pages_is_searched_by_the_query_page_and_the_notes_say_which(service):
    data = io.BytesIO()
    angle_image(0).save(data, format="TIFF", save_all=True, append_images=[angle_image(90)])
    first = service.search(Query(image=data.getvalue(), mode="visual", k=1))
    second = service.search(Query(image=data.getvalue(), page=2, mode="visual", k=1))
    assert first.hits[0].figure_id == "US1-A" and second.hits[0].figure_id == "US2-D"
    assert "the file has 2 pages: page 2 was searched (Query(page=N) picks another)" in second.notes
    with pytest.raises(InputError, match=r"has 2 page\(s\); page 3 was asked for"):
        service.search(Query(image=data.getvalue(), page=3, mode="visual"))
    with pytest.raises(InputError, match="page picks a page of the query image file"):
        service.search(Query(text="rotor", page=2))


def test_pages_are_cut_from_one_ranking_and_neither_repeat_nor_skip(tmp_path, monkeypatch):
    """Stop 27: each page searched candidate lists of its own length, so z-scores, auto's weights and re-ranking
    moved from page to page and pages repeated hits. Lists of 2 (MIN_LIST) over 24 drawings make it show here."""
    import random

    from _search_helpers import add_patent

    from figsearch.pipeline.index import update_collection
    from figsearch.search import service as service_module
    from figsearch.store import Collection

    rng = random.Random(5)
    root = tmp_path / "c"
    with Collection.open(root, create=True) as c:
        for p in range(8):
            words = ["rotor", "blade", "hub", "rotor blade", "blade hub", None]
            add_patent(c, f"US{p + 10}", [(k, rng.randrange(0, 250), rng.choice(words)) for k in "ABC"])
        update_collection(c, visual_model="fake-angle", text_model="fake-words")
    monkeypatch.setattr(service_module, "MIN_LIST", 2)
    monkeypatch.setattr(service_module, "LIST_FACTOR", 1)
    with SearchService.open(root) as s:
        for mode in ("zavg", "auto", "rrf"):
            shown, totals = [], []
            for offset in range(0, 30, 3):
                result = s.search(Query(figure_id="US10-A", mode=mode, k=3, offset=offset))
                shown += [h.figure_id for h in result.hits]
                totals.append(result.total)
            assert len(shown) == len(set(shown)), (mode, shown)  # no hit on two pages
            assert len(shown) == 23 and "US10-A" not in shown, (mode, shown)  # every other drawing, once
            first = s.search(Query(figure_id="US10-A", mode=mode, k=3))
            assert [h.figure_id for h in first.hits] == shown[:3]
