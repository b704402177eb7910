"""What a hit and a figure's details page say first: the figure's own description, not its neighbours'."""

from __future__ import annotations

from figsearch.records import Figure, Patent, Sentence, SentenceLink
from figsearch.search import explain
from figsearch.store import Collection

# EP1667425A1's layout: one sentence lists every figure, a sentence about FIG. 1 shares sign 10 with FIG. 2
SENTENCES = [
    "FIG. 1 is a block diagram of a thermal printer; FIG. 2 is a block diagram of an image forming apparatus; "
    "and FIG. 3 is a diagram of patterns A and B.",
    "In FIG. 1, a thermal printer 10 includes a thermal head 14.",
    "The thermal printer 10 records each color in turn.",
    "As shown in FIG. 2, an image forming apparatus 46 includes an image processing unit 48.",
]
TITLE = "Image forming method and image forming apparatus"


def _collection(tmp_path, description: str | None) -> Collection:
    collection = Collection.open(tmp_path / "c", create=True)
    figure = Figure("EP1-f2", "EP1", label="FIG. 2", sequence=2, description=description)
    collection.upsert_patent(Patent("EP1", "EP", "1", "A1", title=TITLE, language="en"), [figure])
    collection.links.write_patent_text("EP1", [Sentence("EP1", i, t) for i, t in enumerate(SENTENCES)], [], "sha")
    collection.links.write_links("EP1-f2", "EP1", [
        SentenceLink(0, "label"), SentenceLink(1, "sign", "10"), SentenceLink(2, "sign", "10"),
        SentenceLink(3, "label"), SentenceLink(3, "sign", "48"),
    ])
    return collection


def test_a_hit_says_what_its_own_figure_is_first(tmp_path):
    with _collection(tmp_path, "FIG. 2 is a block diagram of an image forming apparatus.") as collection:
        figure = collection.figure("EP1-f2")
        assert explain.hit_sentences(collection, figure) == [
            "FIG. 2 is a block diagram of an image forming apparatus.",  # the list of figures, cut to its clause
            "As shown in FIG. 2, an image forming apparatus 46 includes an image processing unit 48.",
            "In FIG. 1, a thermal printer 10 includes a thermal head 14.",
        ]
        # every sentence, the title last: the text the figure is searched by keeps them all
        assert explain.hit_sentences(collection, figure, limit=10)[3:] == [SENTENCES[2], TITLE]
        # the details page: the list's clause is this figure's brief description, and says so
        first = explain.linked_sentences(collection, figure)[0]
        assert (first.index, first.reason, first.text) == (0, "brief_description", explain.hit_sentences(collection, figure)[0])


def test_a_sentence_is_shown_once_whatever_its_closing_mark(tmp_path):
    """USD0907292S1 FIG. 4: its description "... thereof." and its linked sentence "... thereof;" were two hit lines."""
    with Collection.open(tmp_path / "c", create=True) as collection:
        figure = Figure("US1-D4", "US1", label="FIG. 4", sequence=4, description="FIG. 4 is a left side view thereof.")
        collection.upsert_patent(Patent("US1", "US", "1", "S1", title="Shaving blade cartridge"), [figure])
        collection.links.write_patent_text("US1", [Sentence("US1", 0, "FIG. 4 is a left side view thereof;")], [], "sha")
        collection.links.write_links("US1-D4", "US1", [SentenceLink(0, "brief_description")])
        assert explain.hit_sentences(collection, collection.figure("US1-D4")) == [
            "FIG. 4 is a left side view thereof.", "Shaving blade cartridge"]


def test_the_details_page_lists_the_same_order_with_reasons_and_signs(tmp_path):
    with _collection(tmp_path, None) as collection:
        details = explain.linked_sentences(collection, collection.figure("EP1-f2"))
        assert [(s.index, s.reason, s.signs) for s in details] == [(0, "label", []), (3, "sign", ["48"]),
                                                                 (1, "sign", ["10"]), (2, "sign", ["10"])]
        assert details[0].text == "FIG. 2 is a block diagram of an image forming apparatus."
        assert details[0].lang == "en"


def test_a_german_list_of_figures_is_cut_at_und(tmp_path):
    collection = Collection.open(tmp_path / "c", create=True)
    with collection:
        figure = Figure("DE1-f3", "DE1", label="Fig. 3", sequence=3)
        collection.upsert_patent(Patent("DE1", "DE", "1", "A1", language="de"), [figure])
        text = "Fig. 1 eine Ansicht des Lagers; Fig. 2 einen Schnitt entlang II-II; und Fig. 3 ein Detail der Welle 12."
        collection.links.write_patent_text("DE1", [Sentence("DE1", 0, "Die Welle 12 dreht sich."),
                                                   Sentence("DE1", 1, text)], [], "sha")
        collection.links.write_links("DE1-f3", "DE1", [SentenceLink(0, "sign", "12"), SentenceLink(1, "label")])
        assert explain.hit_sentences(collection, collection.figure("DE1-f3")) == [
            "Fig. 3 ein Detail der Welle 12.", "Die Welle 12 dreht sich."]


def test_of_two_figures_read_as_the_same_label_the_one_in_numbering_order_is_named(tmp_path):
    """EP1667425A1: OCR read the "Fig.5" of sheet 4 as "FIG. 8"; 'EP1000001A1 FIG. 8' names the FIG. 8 of sheet 6, after FIG. 7."""
    labels = [("s1", 1, "FIG. 1"), ("s4a", 4, "FIG. 6"), ("s4b", 4, "FIG. 8"), ("s5", 5, "FIG. 7"), ("s6", 6, "FIG. 8"),
              ("s7", 7, "FIG. 9")]
    with Collection.open(tmp_path / "c", create=True) as collection:
        collection.upsert_patent(Patent("EP1000001A1", "EP", "1000001", "A1"),
                                 [Figure(f"EP1000001A1-{key}", "EP1000001A1", label=label, sequence=seq) for key, seq, label in labels])
        assert explain.resolve_figure(collection, "EP1000001A1 FIG. 8").figure_id == "EP1000001A1-s6"
        assert explain.resolve_figure(collection, "EP1000001A1 FIG. 6").figure_id == "EP1000001A1-s4a"
        assert explain.resolve_figure(collection, "EP1000001A1-s4b").figure_id == "EP1000001A1-s4b"  # an id is taken as it is
