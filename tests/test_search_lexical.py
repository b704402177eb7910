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


def test_word_queries_use_it_unless_told_not_to(root):
    assert lexical.LEXICAL_BY_DEFAULT is True  # stop 25 (docs/lexical.md); the collection's drawings: one language
    with SearchService.open(root) as s:
        default = s.search(Query(text="gearbox hub", mode="text", k=2))
        off = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=False))
    assert ids(default) == ["US1-B", GEARBOX] and any(n.startswith("lexical:") for n in default.notes)
    assert ids(off) == ["US1-B", "US2-D"] and not any(n.startswith("lexical:") for n in off.notes)


# -- stop 25: function words, and collections in several languages ------------------------------------------


def test_function_words_are_left_out_of_the_terms():
    words, pairs = lexical.query_terms("thermal head pressed against the platen roller by a spring")
    assert words == ["thermal", "head", "pressed", "platen", "roller", "spring"]
    assert pairs == ["thermal head", "head pressed", "platen roller"]  # "roller by a spring" gives no pair
    assert lexical.match_expression("the a by") is None and lexical.match_expression("der die das und") is None
    assert lexical.query_terms("l'arbre de la machine")[0] == ["arbre", "machine"]  # French elisions too
    assert lexical.query_terms("Überdruck in der Verkleidung")[0] == ["uberdruck", "verkleidung"]
    # "die" is a German article and an English part: kept unless the query is German by its function words
    assert lexical.query_terms("die casting mold")[0] == ["die", "casting", "mold"]
    assert lexical.query_language("die Feder drückt den Kopf gegen die Walze") == "de"
    assert lexical.query_terms("die Feder drückt den Kopf gegen die Walze")[0] == ["feder", "druckt", "kopf", "walze"]
    assert lexical.matched_words("the hub of a rotor", "a hub on the rotor") == ["hub", "rotor"]


def test_a_word_written_in_capitals_is_an_acronym_not_a_function_word():
    # stop 26: "CAN", "DAS", "ART" in capitals were folded into the English/German words and left out
    assert lexical.query_terms("CAN bus controller") == (["can", "bus", "controller"], ["can bus", "bus controller"])
    assert lexical.query_terms("the can of the lid")[0] == ["lid"]  # in lower case still a function word
    assert lexical.query_terms("ART module and the A frame")[0] == ["art", "module", "frame"]  # one letter: no acronym
    # the capitals decide per occurrence: the article "das" beside the acronym "DAS" is left out, and makes no pair
    assert lexical.query_terms("DAS Steuergerät für das Fahrzeug") == (["das", "steuergerat", "fahrzeug"],
                                                                       ["das steuergerat"])
    # a query all in capitals says nothing by its case
    assert lexical.query_terms("THE LID OF A BOX")[0] == ["lid", "box"]
    assert lexical.match_expression("CAN") is None
    assert lexical.matched_words("CAN bus", "a CAN bus and a can") == ["can", "bus"]


def test_a_capitalised_acronym_finds_the_figure_that_names_it(root):
    _add_figure(root, "US7", "CAN transceiver board")
    with SearchService.open(root) as s:
        found = s.search(Query(text="CAN interface", mode="text", k=3, lexical=True))
        lower = s.search(Query(text="can interface", mode="text", k=3, lexical=True))
    assert ids(found)[0] == "US7-L" and found.hits[0].matched_words == ["can"]
    assert "US7-L" not in ids(lower)[:1] and all(not h.matched_words for h in lower.hits)


def _add_figure(root, publication: str, text: str, angle: int = 70) -> None:
    with Collection.open(root, write=True) as c:
        add_patent(c, publication, [("L", angle, text)])
        update_collection(c)


def test_a_query_that_shares_only_function_words_with_a_figure_gets_bm25_share_0(root):
    _add_figure(root, "US6", "a lid on the housing")  # shares "the", "a", "on" with the queries below only
    with SearchService.open(root) as s:
        for text in ("the spring on a roller", "the a on"):
            dense = s.search(Query(text=text, mode="text", k=6, lexical=False))
            fused = s.search(Query(text=text, mode="text", k=6, lexical=True))
            # before stop 25 "the" and "a" gave US6-L the whole BM25 share (0.5) above every cosine-0 figure
            assert [(h.figure_id, round(h.score, 9)) for h in fused.hits] == \
                [(h.figure_id, round(h.score, 9)) for h in dense.hits], text
            assert all(not h.matched_words for h in fused.hits)
            assert any("BM25 share 0" in n for n in fused.notes), fused.notes
        assert any("all function words" in n for n in fused.notes)


def _set_languages(root, languages: dict[str, str]) -> None:
    with Collection.open(root, write=True) as c, c.transaction() as db:
        for publication, lang in languages.items():
            db.execute("UPDATE patents SET language = ?, lang = ? WHERE publication_number = ?",
                       (lang, lang, publication))


def test_figures_in_another_language_than_the_query_keep_their_cosine(root):
    # US2 (C "rotor", D "rotor blade hub") is German here: an English query's words say nothing about it
    _set_languages(root, {"US1": "en", "US2": "de", "US4": "en"})
    with SearchService.open(root) as s:
        dense = s.search(Query(text="gearbox hub", mode="text", k=3, lexical=False))
        fused = s.search(Query(text="gearbox hub", mode="text", k=3, lexical=True))
    cosine = {h.figure_id: h.score for h in dense.hits}
    scores = {h.figure_id: h.score for h in fused.hits}
    # "gearbox" and "hub" are found in English figures (B, G) and D: the query counts as English. D keeps its cosine
    # (1 / sqrt 3, above G's 0.5 x BM25) instead of 0.5 x cosine + 0.5 x its BM25, which put G above it before
    assert ids(fused) == ["US1-B", "US2-D", GEARBOX]
    assert scores["US2-D"] == pytest.approx(cosine["US2-D"]) == pytest.approx(3 ** -0.5, abs=1e-6)
    assert any("query is in en (of its words' figures)" in n and "in other languages keep their cosine" in n
               for n in fused.notes), fused.notes
    with SearchService.open(root) as s:  # figures of the other modality's list outside the text list: the same rule
        exact = s._lexical_exact({"US2-D": 0.6, "US1-B": 0.4, GEARBOX: 0.0}, {"US1-B": 1.0, GEARBOX: 0.5}, 0.5, "en")
    assert exact == pytest.approx({"US2-D": 0.6, "US1-B": 0.7, GEARBOX: 0.25})
    _set_languages(root, {"US2": "en"})  # all English: D is fused like the others and falls below G
    with SearchService.open(root) as s:
        assert ids(s.search(Query(text="gearbox hub", mode="text", k=3, lexical=True))) == ["US1-B", GEARBOX, "US2-D"]


def test_the_query_language_decides_which_figures_bm25_judges(root):
    _set_languages(root, {"US1": "en", "US2": "en", "US4": "de"})
    with SearchService.open(root) as s:
        # three German function words: the query is German; only the German G is fused (cosine 0, BM25 1: 0.5), the
        # English figures keep their cosines (B: 1.0, D: 1 / sqrt 3), not halved
        found = s.search(Query(text="die Nabe mit dem gearbox hub", mode="text", k=3, lexical=True))
    assert [(h.figure_id, round(h.score, 6)) for h in found.hits] == \
        [("US1-B", 1.0), ("US2-D", round(3 ** -0.5, 6)), (GEARBOX, 0.5)]
    assert any("query is in de (detected)" in n for n in found.notes), found.notes
    assert lexical.other_language("de", "en") and not lexical.other_language(None, "en")
    assert not lexical.other_language("de", None) and not lexical.other_language("en", "en")
    assert lexical.matched_language(["en", "de", "en", None]) == "en"
    assert lexical.matched_language(["en", "de"]) is None and lexical.matched_language([None]) is None


def test_the_default_is_off_in_a_collection_whose_drawings_are_in_several_languages(root):
    _set_languages(root, {"US1": "en", "US2": "en", "US4": "en"})
    with SearchService.open(root) as s:
        assert lexical.collection_languages(s.collection) == ["en"]
        one = s.search(Query(text="gearbox hub", mode="text", k=2))
        assert s.info()["lexical"] == {"by_default": True, "languages": ["en"], "present": True}
    assert ids(one) == ["US1-B", GEARBOX]  # one language: on by default
    _set_languages(root, {"US4": "de"})
    with SearchService.open(root) as s:
        assert lexical.collection_languages(s.collection) == ["en", "de"]
        several = s.search(Query(text="gearbox hub", mode="text", k=2))
        asked = s.search(Query(text="gearbox hub", mode="text", k=2, lexical=True))
        assert s.info()["lexical"]["by_default"] is False  # the web page's box starts unticked here
    assert ids(several) == ["US1-B", "US2-D"]
    assert any("off by default in this collection" in n and "2 languages (en, de)" in n for n in several.notes)
    assert any(n.startswith("lexical: ") and "BM25" in n for n in asked.notes)  # asked for, it runs
    assert lexical.on_by_default([]) and lexical.on_by_default(["en"]) and not lexical.on_by_default(["en", "fr"])
