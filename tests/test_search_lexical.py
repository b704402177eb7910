"""The lexical (BM25) part of the text channel (search/lexical.py, store/lexical.py) on the hand-computed
collection of test_search_service.py plus a figure whose words the fake text encoder cannot see."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from _search_helpers import add_patent, hand_collection

from figsearch.pipeline.index import update_collection
from figsearch.search import lexical
from figsearch.search.query import Filters, Query
from figsearch.search.service import SearchService
from figsearch.store import Collection

GEARBOX = "US4-G"


def build(root) -> None:
    hand_collection(root)
    with Collection.open(root, write=True) as c:
        # fake-words sees only rotor/blade/hub: to the dense part this text is "other", like any other word
        add_patent(c, "US4", [("G", 45, "planetary gearbox with Wärmetauscher")])
        update_collection(c, visual_model="fake-angle", text_model="fake-words")


@pytest.fixture
def root(collection_dir, monkeypatch):
    # the fake encoder's cosine is 1.0 with any figure that has its one known word ("hub"), which the per-query
    # share (lexical.query_weight) reads as a near paraphrase: these tests take the full share; the share's own
    # tests below use the real threshold
    monkeypatch.setattr(lexical, "DENSE_CONFIDENT", 1.5)
    build(collection_dir)
    return collection_dir


def ids(result) -> list[str]:
    return [h.figure_id for h in result.hits]


def test_index_fills_the_table_with_every_drawing_that_has_text(root):
    with Collection.open(root) as c:
        # A B C D G have text; EP3-E has none and front pages are no drawings
        assert sorted(c.lexical.digests()) == ["US1-A", "US1-B", "US2-C", "US2-D", GEARBOX]
        assert c.lexical.texts([GEARBOX])[GEARBOX] == "planetary gearbox with Wärmetauscher"


def test_words_the_dense_part_misses_are_found(root):
    with SearchService.open(root) as s:
        dense = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=False))
        fused = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=True))
    # dense: query = "hub" (gearbox is no word of the fake encoder's): B (hub) then D (rotor blade hub)
    assert ids(dense) == ["US1-B", "US2-D"] and all(not h.matched_words for h in dense.hits)
    # lexical: G has the rarest word, so the highest BM25 (normalised to 1) and cosine 0: 0.5 * 0 + 0.5 * 1
    assert ids(fused) == ["US1-B", GEARBOX]
    gearbox = fused.hits[1]
    assert gearbox.score == pytest.approx(lexical.LEXICAL_WEIGHT * 1.0)
    assert gearbox.matched_words == ["gearbox"] and fused.hits[0].matched_words == ["hub"]
    assert "lexical" in fused.timings and any(n.startswith("lexical:") for n in fused.notes)


def test_diacritics_and_fts_syntax_in_the_query(root):
    with SearchService.open(root) as s:
        found = s.search(Query(text='warmetauscher "OR gear* NEAR(', mode="text", k=1, lexical=True))
    assert ids(found) == [GEARBOX] and found.hits[0].matched_words == ["warmetauscher"]


def test_filters_hold_for_the_lexical_candidates(root):
    with SearchService.open(root) as s:
        found = s.search(Query(text="gearbox", mode="text", k=10, lexical=True,
                               filters=Filters(exclude_patents=("US4",))))
    assert GEARBOX not in ids(found)


def test_an_incremental_add_writes_only_the_new_figure(root):
    with Collection.open(root, write=True) as c:
        add_patent(c, "US5", [("H", 20, "gearbox cover")])
        report = update_collection(c)
        assert any("1 written, 0 removed, 5 unchanged" in n for n in report.notes)
    with SearchService.open(root) as s:
        found = s.search(Query(text="gearbox cover", mode="text", k=1, lexical=True))
    assert ids(found) == ["US5-H"]


def test_searches_on_read_only_connections_in_several_threads(root):
    with SearchService.open(root) as s:
        assert not s.collection.writable
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda _: (threading.get_ident(), s.search(
                Query(text="gearbox", mode="text", k=1, lexical=True))), range(6)))
    assert {tuple(ids(r)) for _, r in results} == {(GEARBOX,)}


def test_a_collection_without_the_table_searches_dense_and_says_how_to_build_it(root):
    with Collection.open(root, write=True) as c:  # as indexed before stop 24
        with c.transaction() as db:
            db.execute("DROP TABLE figure_fts")
            db.execute("DROP TABLE figure_lexical")
    with SearchService.open(root) as s:
        found = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=True))
    assert ids(found) == ["US1-B", "US2-D"]
    assert any("figsearch index --collection" in n and "no lexical" in n for n in found.notes)
    with Collection.open(root, write=True) as c:
        report = update_collection(c)
        assert any(n.startswith("lexical table created") and "5 written" in n for n in report.notes)
    with SearchService.open(root) as s:
        assert ids(s.search(Query(text="gearbox hub", mode="text", k=2, lexical=True))) == ["US1-B", GEARBOX]


def test_auto_mode_fuses_the_lexical_text_channel(root):
    with SearchService.open(root) as s:
        plain = s.search(Query(text="gearbox hub", mode="auto", k=3, lexical=False))
        fused = s.search(Query(text="gearbox hub", mode="auto", k=3, lexical=True))
    assert GEARBOX not in ids(plain) and GEARBOX in ids(fused)


def test_the_public_api_passes_the_option(root):
    import figsearch

    with figsearch.open(root) as c:
        hits = c.search(text="gearbox hub", mode="text", k=2, lexical=True).hits
    assert [h.figure_id for h in hits] == ["US1-B", GEARBOX]


def test_match_expression_quotes_words_and_adds_adjacent_pairs():
    assert lexical.match_expression('Thermal head "14"') == '"thermal" OR "head" OR "14" OR "thermal head" OR "head 14"'
    assert lexical.match_expression("thermal head", pairs=False) == '"thermal" OR "head"'
    assert lexical.match_expression(" ;-) ") is None


def test_the_bm25_share_is_zero_when_the_best_figure_text_is_a_near_paraphrase():
    assert lexical.query_weight(1.0) == 0.0
    assert lexical.query_weight(lexical.DENSE_CONFIDENT) == 0.0
    # a loose best match (a part name against diluted texts), or no dense list at all: the full share
    assert lexical.query_weight(lexical.DENSE_CONFIDENT - 0.01) == lexical.LEXICAL_WEIGHT
    assert lexical.query_weight(0.5) == lexical.LEXICAL_WEIGHT
    assert lexical.query_weight(None) == lexical.LEXICAL_WEIGHT


def test_a_sure_dense_match_keeps_the_dense_order_and_a_loose_one_is_fused(root, monkeypatch):
    monkeypatch.setattr(lexical, "DENSE_CONFIDENT", 0.75)
    with SearchService.open(root) as s:
        dense = s.search(Query(text="gearbox hub", mode="text", k=3, lexical=False))
        sure = s.search(Query(text="gearbox hub", mode="text", k=3, lexical=True))
        loose_dense = s.search(Query(text="blade blade blade hub gearbox", mode="text", k=5, lexical=False))
        loose = s.search(Query(text="blade blade blade hub gearbox", mode="text", k=5, lexical=True))
    # "gearbox hub": the fake encoder sees "hub", cosine 1.0 with B: share 0, the cosine order and scores stay
    assert ids(sure) == ids(dense) == ["US1-B", "US2-D", "US1-A"]
    assert [h.score for h in sure.hits] == pytest.approx([h.score for h in dense.hits])
    assert any("BM25 share 0" in n and "cosine 1.00" in n for n in sure.notes)
    assert sure.hits[0].matched_words == ["hub"]  # the words that matched are still shown
    # (0, 3, 1) against D (1, 1, 1): cosine 4 / (sqrt 10 sqrt 3) = 0.73 < 0.75: the full share. D has the highest
    # BM25 (blade, hub, "blade hub"), so 0.5 x 0.73 + 0.5 x 1; G (gearbox, cosine 0) rises from 0 to 0.5 x its BM25
    cosine = {h.figure_id: h.score for h in loose_dense.hits}
    fused = {h.figure_id: h.score for h in loose.hits}
    assert cosine["US2-D"] == pytest.approx(4 / (10 ** 0.5 * 3 ** 0.5), abs=1e-6)
    assert fused["US2-D"] == pytest.approx(0.5 * cosine["US2-D"] + 0.5, abs=1e-6)
    assert cosine[GEARBOX] == 0.0 and fused[GEARBOX] > 0.0
    assert any(f"{lexical.LEXICAL_WEIGHT:g} x BM25" in n for n in loose.notes)


def test_word_queries_use_it_when_asked_and_not_by_default(root):
    assert lexical.LEXICAL_BY_DEFAULT is False
    with SearchService.open(root) as s:
        default = s.search(Query(text="gearbox hub", mode="text", k=2))
        on = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=True))
        off = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=False))
    assert ids(on) == ["US1-B", GEARBOX] and any(n.startswith("lexical:") for n in on.notes)
    for result in (default, off):
        assert ids(result) == ["US1-B", "US2-D"] and not any(n.startswith("lexical:") for n in result.notes)
