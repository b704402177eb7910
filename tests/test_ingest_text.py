"""Publication numbers, classification codes and brief-description sentences."""

from __future__ import annotations

import pytest

from figsearch.ingest.figtext import assign, figure_sentences, sentences_of
from figsearch.ingest.numbers import find_in_text, from_file_stem, normalise
from figsearch.ingest.us_xml import locarno, uspc
from figsearch.records import FigureRole, Paragraph, SourceImage


@pytest.mark.parametrize(
    "office, number, kind, expected",
    [
        ("US", "06859910", "B2", "US06859910B2"),
        ("US", "6859910", "B2", "US06859910B2"),
        ("US", "D0907292", "S1", "USD0907292S1"),
        ("US", "D435854", "S", "USD0435854S1"),  # PATDOC's "S" and v4's "S1" are one kind
        ("US", "20250204297", "A1", "US20250204297A1"),
        ("US", "2020041423", "A1", "US20200041423A1"),  # DOCDB application form gains its zero
        ("EP", "1667425", "A1", "EP1667425A1"),
        ("EP", "0000002", "A1", "EP0000002A1"),
        ("WO", "2022038251", "A1", "WO2022038251A1"),
    ],
)
def test_normalise(office, number, kind, expected):
    assert normalise(office, number, kind).publication_number == expected


@pytest.mark.parametrize(
    "stem, expected, key",
    [
        ("USD0871717-20200107-D00002", "USD0871717S1", "D00002"),
        ("US20250204297A1-20250626-D00014", "US20250204297A1", "D00014"),
        ("US-12094235-B2", "US12094235B2", None),
        ("103-USD528368", "USD0528368S1", None),
        ("USD0534331", "USD0534331S1", None),
        ("CA3155791A1", "CA3155791A1", None),
    ],
)
def test_numbers_in_file_names(stem, expected, key):
    pub, found_key = from_file_stem(stem)
    assert pub.publication_number == expected
    assert found_key == key


@pytest.mark.parametrize("stem", ["fig1", "1", "50fb5acf146b6cf4", "sample_data", "DOC00001"])
def test_names_without_numbers(stem):
    assert from_file_stem(stem) is None


def test_number_in_front_page_text():
    text = "(12) United States Design Patent (10) Patent No.: \r\nMaldonado \r\nUSOOD528368S \r\nUS D528,368 S"
    assert find_in_text(text).publication_number == "USD0528368S1"


@pytest.mark.parametrize(
    "raw, expected",
    [("D 7654", "D7/654"), (" D74012", "D7/401.2"), ("D14486", "D14/486"), ("709203", "709/203"),
     ("600300000", "600/300"), ("428 641", "428/64.1"), ("  2 93", "2/93"), ("D21801-805", "D21/801-805")],
)
def test_uspc_fixed_width(raw, expected):
    assert uspc(raw) == expected


def test_locarno():
    assert locarno("0703") == "07-03"
    assert locarno("7") is None


def test_figure_sentences_split_and_clean():
    text = ("FIG. 1 is a front perspective view of an eyeglass; FIG. 2 is a rear view thereof; and, "
            "FIG. 3 is a bottom plan view thereof. The broken lines form no part of the design.")
    found = sentences_of(text)
    assert [f.label for f in found] == ["FIG. 1", "FIG. 2", "FIG. 3"]
    assert found[1].sentence == "FIG. 2 is a rear view thereof."
    assert found[2].sentence == "FIG. 3 is a bottom plan view thereof."


def test_figure_sentences_of_a_us_front_page_text_layer():
    """As the PDF reader gets it: the heading run into the first sentence, OCR's spacing, a lost semicolon."""
    text = ("The ornamental design for a toy scale, as shown and described. DESCRIPTION FIG. 1 is a front view "
            "of a toy scale; FIG. 2 is a left view thereof FIG. 3 is a top view thereof ;and , FIG. 4 is a "
            "bottom view thereof. The broken lines form no part of the claimed design.")
    found = sentences_of(text)
    assert [f.label for f in found] == ["FIG. 1", "FIG. 2", "FIG. 3", "FIG. 4"]
    assert [f.sentence for f in found[:2]] == ["FIG. 1 is a front view of a toy scale.", "FIG. 2 is a left view thereof."]
    assert found[3].sentence == "FIG. 4 is a bottom view thereof."
    # "description" in running text is no heading
    assert sentences_of("As the description FIG. 1 is cited in explains") == []


@pytest.mark.parametrize(
    "text, labels",
    [
        ("FIGS. 4A and 4B are sections through the lid.", ["FIG. 4A", "FIG. 4B"]),
        ("FIGS. 3A-3C show the hinge.", ["FIG. 3A", "FIG. 3B", "FIG. 3C"]),
        ("FIGS. 1 to 3 are views of the frame.", ["FIG. 1", "FIG. 2", "FIG. 3"]),
        ("FIG. 2: is an exploded view of the guide (11).", ["FIG. 2"]),
        ("Fig. 5 shows a plan view of Fig. 4.", ["FIG. 5"]),
        ("The FIGURE is a front view of a display screen.", ["FIGURE"]),
        ("The broken lines shown in FIGS. 1-7 represent the portions", []),
        ("Referring now to FIG. 1, the engine 10", []),
        ("1.2 : Front", ["1.2"]),
        ("The broken lines form no part; reproduction 1.1 is a front perspective view of the screen; "
         "reproduction 1.2 is a top view.", ["1.1", "1.2"]),
    ],
)
def test_figure_labels(text, labels):
    assert [f.label for f in sentences_of(text)] == labels


def test_brief_section_preferred_over_detailed_description():
    paragraphs = [
        Paragraph("FIG. 1 shows the engine 10 running at speed.", heading="DETAILED DESCRIPTION"),
        Paragraph("FIG. 1 is a side view of the engine.", heading="BRIEF DESCRIPTION OF THE DRAWINGS"),
    ]
    assert [f.sentence for f in figure_sentences(paragraphs)] == ["FIG. 1 is a side view of the engine."]


def test_assign_only_when_evident():
    sentences = sentences_of("FIG. 1 is a top view; FIG. 2 is a side view.")
    sheets = [SourceImage("D00000", role=FigureRole.FRONT_PAGE), SourceImage("D00001"), SourceImage("D00002")]
    assert assign(sheets, sentences)
    assert [s.label for s in sheets] == [None, "FIG. 1", "FIG. 2"]
    assert sheets[2].description == "FIG. 2 is a side view."
    # three figures on two sheets: which sheet holds which is not evident from the text
    crowded = [SourceImage("D00001"), SourceImage("D00002")]
    assert not assign(crowded, sentences_of("FIG. 1 is a; FIG. 2 is b; FIG. 3 is c."))
    assert all(s.label is None and s.description is None for s in crowded)
