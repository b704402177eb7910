"""Parsing words read in a drawing into reference signs."""

from __future__ import annotations

import pytest

from figsearch.ocr.base import TextBox
from figsearch.ocr.signs import normalise_label, normalise_numeral, parse_signs


@pytest.mark.parametrize(
    "text, expected",
    [("12", "12"), ("14a", "14a"), ("14'", "14'"), ("14’", "14'"), ("102-1", "102-1"), ("(16)", "16"),
     ("S06b", "506b"), ("1O2", "102"), ("‘16", "16"), ("'12", "12"), ("0", None), ("12345", None), ("2/7", None), ("abc", None),
     ("2.5", None), ("FIG", None), ("£200", "200"), ("<12", "12"), ("$5", None)],
)
def test_normalise_numeral(text, expected):
    assert normalise_numeral(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("FIG. 3", "FIG. 3"), ("Fig.3a", "FIG. 3A"), ("FIGURE 12", "FIG. 12"), ("Figure 7", "FIG. 7"),
     ("FIG, 2", "FIG. 2"), ("FIGS", None), ("Fig", None), ("FIG-1", "FIG. 1"), ("FIG_1", "FIG. 1"), ("Fig.-4", "FIG. 4"),
     ("FIG-", None), ("FIG--1", None)],
)
def test_normalise_label(text, expected):
    assert normalise_label(text) == expected


def word(text, x, line, conf=0.95):
    return TextBox(text, (x, line * 50, x + 40, line * 50 + 30), conf, line=line)


def test_labels_numerals_and_what_is_dropped():
    words = [
        word("Patent", 0, 1), word("Application", 50, 1), word("Publication", 100, 1), word("Jun.", 150, 1),
        word("26,", 200, 1), word("2025", 250, 1), word("Sheet", 300, 1), word("3", 350, 1), word("of", 400, 1),
        word("14", 450, 1),
        word("FIG.", 0, 2), word("5", 50, 2),
        word("12", 0, 3), word("14a", 100, 3), word("2/7", 200, 3), word("2005-06-14", 300, 3),
        word("noise", 400, 3), word("16", 500, 3, conf=0.2),
    ]
    signs = parse_signs(words)
    assert [(s.text, s.kind) for s in signs] == [("FIG. 5", "figure_label"), ("12", "numeral"), ("14a", "numeral")]
    label = signs[0]
    assert label.box == (0, 100, 90, 130)  # the union of "FIG." and "5"


def test_a_label_printed_with_a_hyphen_is_a_label():
    # "FIG-1" of a design sheet (dev5's 17.pdf), read as one word or as "FIG-" and "1"
    assert [(s.text, s.kind) for s in parse_signs([word("FIG-1", 0, 1), word("12", 0, 2), word("14", 100, 2)])][0] == ("FIG. 1", "figure_label")
    assert [(s.text, s.kind) for s in parse_signs([word("FIG-", 0, 1), word("1", 50, 1)])] == [("FIG. 1", "figure_label")]


def test_a_sheet_of_decimals_is_a_table_not_signs():
    words = [word(t, i * 50, 1) for i, t in enumerate(["12", "0,98", "7,1", "83,5", "2,25", "45%", "30"])]
    assert {s.kind for s in parse_signs(words)} == {"number"}


def test_plausible_signs_keeps_cited_numerals_and_unlinks_the_rest():
    from figsearch.ocr.signs import plausible_signs
    from figsearch.records import ReferenceSign

    signs = [ReferenceSign("12", "numeral"), ReferenceSign("7", "numeral"), ReferenceSign("FIG. 2", "figure_label")]
    kinds = lambda out: [(s.text, s.kind) for s in out]  # noqa: E731
    assert kinds(plausible_signs(signs, {"12"})) == [("12", "numeral"), ("7", "number"), ("FIG. 2", "figure_label")]
    assert kinds(plausible_signs(signs, set())) == [("12", "number"), ("7", "number"), ("FIG. 2", "figure_label")]
    assert kinds(plausible_signs(signs, None)) == kinds(signs)


@pytest.mark.parametrize(
    "line, expected",
    [("FIG. 43", "FIG. 43"), ("Fig.5", "FIG. 5"), ("ig. 2", "FIG. 2"), ("F1G 3A", "FIG. 3A"), ("Figure 12", "FIG. 12"),
     ("FIG. 3 (Prior Art)", "FIG. 3"), ("FlG.7", "FIG. 7"), ("102", None), ("FIGS", None), ("FIG. 2 of", None),
     ("Fuel System", None), ("FIG-1", "FIG. 1"), ("FIG_12", "FIG. 12"), ("Figure-3", "FIG. 3")],
)
def test_label_lines_in_every_common_style(line, expected):
    from figsearch.ocr.signs import match_label_line

    assert match_label_line(line) == expected


def test_a_lone_digit_read_unsurely_is_no_numeral():
    # (the sheet carries a numbering of its own, "10" and "14": see the sparse-sheet test below)
    signs = parse_signs([word("7", 10, 1, conf=0.6), word("12", 200, 1, conf=0.6), word("4", 400, 2, conf=0.95),
                         word("10", 10, 3), word("14", 200, 3)])
    assert [s.text for s in signs] == ["12", "4", "10", "14"]


def test_a_numeral_read_below_half_sure_is_dropped():
    signs = parse_signs([word("13", 10, 1, conf=0.45), word("10", 10, 2), word("12", 200, 2), word("14", 400, 2)])
    assert [s.text for s in signs] == ["10", "12", "14"]


@pytest.mark.parametrize(
    "read, expected",
    [
        # a design drawing: a dash read "1", a dot read "4": no numbering, no sign
        ([("1", 0.97), ("4", 0.95)], []),
        # a lone digit beside a surely read two-digit numeral: the digit goes, the numeral stays
        ([("1", 0.97), ("21", 0.9)], ["21"]),
        ([("11", 0.9), ("21", 0.9)], ["11", "21"]),
        # a two-digit reading of dotted shading, read unsurely
        ([("14", 0.6), ("9", 0.87)], []),
        # three one-digit numerals are a numbering
        ([("1", 0.95), ("2", 0.95), ("3", 0.95)], ["1", "2", "3"]),
    ],
)
def test_a_sheet_without_a_numbering_keeps_only_sure_multi_digit_numerals(read, expected):
    words = [word(text, 100 * i, i + 1, conf=conf) for i, (text, conf) in enumerate(read)]
    words.append(word("FIG.", 0, 9))
    words.append(word("2", 50, 9))
    signs = parse_signs(words)
    assert [s.text for s in signs if s.kind == "numeral"] == expected
    assert [s.text for s in signs if s.kind == "figure_label"] == ["FIG. 2"]


def test_axis_ticks_are_numbers_but_a_column_of_signs_is_not():
    ticks = [TextBox(str(v), (100 + i * 160, 900, 140 + i * 160, 930), 0.96, line=1) for i, v in enumerate(range(0, 288, 32))]
    signs = [TextBox(str(v), (1500, 100 + i * 230, 1560, 130 + i * 230), 0.96, line=2 + i) for i, v in enumerate(range(302, 318, 2))]
    kinds = {(s.text, s.kind) for s in parse_signs(ticks + signs)}
    assert {k for t, k in kinds if int(t) < 300} == {"number"}
    assert {k for t, k in kinds if int(t) >= 300} == {"numeral"}


def test_a_figures_own_numbering_stepping_by_five_is_no_axis():
    # a column of boxes numbered 2205, 2210, 2215, 2220 on FIG. 22: evenly spaced, a progression by 5,
    # yet the figure's own numbering (its label's number and two digits); without that label, an axis
    column = [TextBox(str(v), (20, 200 + i * 300, 117, 233 + i * 300), 0.97, line=1 + i)
              for i, v in enumerate(range(2205, 2225, 5))]
    label = [TextBox("FIG.", (1386, 1938, 1560, 2008), 0.92, line=9), TextBox("22", (1580, 1938, 1708, 2008), 0.92, line=9)]
    kinds = {s.text: s.kind for s in parse_signs(column + label)}
    assert kinds == {"2205": "numeral", "2210": "numeral", "2215": "numeral", "2220": "numeral", "FIG. 22": "figure_label"}
    assert {s.kind for s in parse_signs(column)} == {"number"}
    # ticks 100, 200, 300, 400 on FIG. 1 are not FIG. 1's numbering (200 is no 1xx): still an axis
    ticks = [TextBox(str(v), (100 + i * 160, 900, 160 + i * 160, 930), 0.96, line=1) for i, v in enumerate(range(100, 500, 100))]
    label = [TextBox("FIG.", (100, 1500, 200, 1540), 0.95, line=2), TextBox("1", (210, 1500, 230, 1540), 0.95, line=2)]
    assert {s.kind for s in parse_signs(ticks + label) if s.text.isdigit()} == {"number"}


def test_table_values_and_the_range_beside_them_are_numbers():
    # "34 ~ 51" written beside a table: "51" touches it (marked as data by the engine), "34" is its row;
    # "14" stands too far along the row, "12" in another row
    words = [TextBox("34", (100, 100, 140, 130), 0.96, line=1), TextBox("51", (250, 100, 290, 130), 0.97, line=2, data=True),
             TextBox("14", (600, 100, 640, 130), 0.97, line=3), TextBox("12", (100, 400, 140, 430), 0.97, line=4)]
    kinds = {s.text: s.kind for s in parse_signs(words)}
    assert kinds == {"34": "number", "51": "number", "14": "numeral", "12": "numeral"}


@pytest.mark.parametrize(
    "text, expected",
    [("114A", "114A"), ("20C", "20C"), ("1O2A", "102A"), ("(132E)", "132E"), ("12a", "12a"), ("5'", "5'"),
     # a look-alike letter alone is read as its digit, as before ("13B" is most often "138")
     ("13B", "138"), ("10D", "100"),
     # one digit, or a value's unit letter: no numeral
     ("3A", None), ("5G", None), ("12V", None), ("10K", None), ("100W", None), ("114AB", None),
     # the last of a numbered series "104-1, ..., 104-N" (two digits or more; not a digit look-alike)
     ("104-N", "104-N"), ("104-n", "104-n"), ("(104-M)", "104-M"), ("104-1", "104-1"), ("3-N", None), ("12-V", None)],
)
def test_upper_case_suffixes(text, expected):
    assert normalise_numeral(text) == expected


def test_a_lookalike_suffix_is_a_letter_where_the_sheet_prints_a_family():
    # "114A" beside "114B": the B is a suffix; "132B" alone on the sheet reads as the digit ("1328")
    words = [word("114A", 0, 1), word("114B", 200, 1), word("132B", 0, 2), word("210", 200, 2)]
    assert [s.text for s in parse_signs(words)] == ["114A", "114B", "1328", "210"]
    # the family counts only the same number: "132A" makes "132B" a letter too
    words.append(word("132A", 0, 3))
    assert [s.text for s in parse_signs(words)] == ["114A", "114B", "132B", "210", "132A"]


def test_a_label_number_with_an_upper_case_suffix_stays_a_label():
    signs = parse_signs([word("FIG.", 0, 1), word("12A", 50, 1), word("12B", 0, 2), word("14", 200, 2), word("16", 300, 2)])
    assert [(s.text, s.kind) for s in signs] == [("FIG. 12A", "figure_label"), ("128", "numeral"), ("14", "numeral"),
                                                 ("16", "numeral")]


def _graph_words():
    """The words of a graph as read (after US-10006933-B2 fig3 of dev4): y ticks -160 ... -185 read
    with a "~" for a minus, "-160" misread "-180", "-170" read unsurely; x ticks 0, 5, 10, 15 of which
    "0" is no numeral and "5" is read below a numeral's confidence; curve values "N0 = 400" ..."""
    y = [("-180", 0.52), ("~165", 0.81), ("~178", 0.36), ("-175", 0.84), ("~180", 0.9), ("~185", 0.91)]
    words = [TextBox(text, (240, 306 + 209 * i, 358, 352 + 209 * i), conf, line=1 + i) for i, (text, conf) in enumerate(y)]
    x = [("0", 0.74), ("5", 0.5), ("10", 0.72), ("15", 0.96)]
    words += [TextBox(text, (387 + 467 * i, 1420, 430 + 467 * i, 1458), conf, line=10) for i, (text, conf) in enumerate(x)]
    for i, value in enumerate(("400", "300", "200")):
        top = 260 + 130 * i
        words += [TextBox("N", (436, top, 470, top + 42), 0.92, line=20 + i), TextBox("=", (509, top, 535, top + 42), 0.94, line=20 + i),
                  TextBox(value, (552, top, 643, top + 42), 0.9, line=20 + i)]
    return words + [TextBox("FIG.", (106, 1651, 232, 1709), 0.94, line=30), TextBox("3", (271, 1650, 304, 1707), 0.97, line=30)]


def test_a_graphs_ticks_with_lost_and_misread_ones_and_its_values_after_equals_are_numbers():
    signs = parse_signs(_graph_words())
    assert [s.text for s in signs if s.kind == "numeral"] == []
    assert {s.text for s in signs if s.kind == "number"} == {"180", "165", "175", "185", "10", "15", "400", "300", "200"}
    assert [s.text for s in signs if s.kind == "figure_label"] == ["FIG. 3"]


def test_tick_words_need_even_slots_and_a_step_other_than_a_numbering():
    from figsearch.ocr.axes import tick_words

    def column(values, gaps):
        tops = [100 + sum(gaps[:i]) for i in range(len(values))]
        return [TextBox(v, (500, t, 560, t + 30), 0.95, line=i) for i, (v, t) in enumerate(zip(values, tops))]

    # an axis with one tick lost (an empty slot): found
    assert tick_words(column(["50", "100", "200", "250"], [200, 400, 200])) == {0, 1, 2, 3}
    # reference numerals stepping by 2 down a column of boxes, one missing: a numbering, no axis
    assert tick_words(column(["10", "12", "16", "18"], [200, 400, 200])) == set()
    # a progression by 10 at uneven places: no axis
    assert tick_words(column(["10", "20", "30", "40"], [200, 330, 120])) == set()
    # decimals step by 0.5: an axis
    assert tick_words(column(["0.5", "1.0", "1.5", "2.0"], [150, 150, 150])) == {0, 1, 2, 3}
    # three ticks are not enough
    assert tick_words(column(["5", "10", "15"], [150, 150])) == set()


def test_a_number_after_an_equals_sign_is_a_value():
    words = [TextBox("R", (100, 100, 130, 140), 0.95, line=1), TextBox("=", (140, 100, 160, 140), 0.95, line=1),
             TextBox("47", (170, 100, 220, 140), 0.95, line=1), TextBox("12", (600, 100, 650, 140), 0.95, line=2),
             TextBox("14", (600, 300, 650, 340), 0.95, line=3), TextBox("16", (600, 500, 650, 540), 0.95, line=4)]
    kinds = {s.text: s.kind for s in parse_signs(words)}
    assert kinds == {"47": "number", "12": "numeral", "14": "numeral", "16": "numeral"}


def test_a_numeral_lettered_far_smaller_than_the_sheets_numerals_is_dropped():
    # four numerals 50 px high and a speck of stipple read "#45" 19 px high; the same on a sideways
    # sheet, where the lettering's height is the box's width
    for rotation in (0, 270):
        def box(x, y, height, width):
            return (x, y, x + width, y + height) if rotation == 0 else (x, y, x + height, y + width)
        words = [TextBox(t, box(100, 200 * i, 50, 70), 0.97, line=i, rotation=rotation) for i, t in enumerate(("51", "52", "53", "54"))]
        words.append(TextBox("#45", box(900, 900, 19, 31), 0.7, line=9, rotation=rotation))
        words.append(TextBox("55", box(900, 1300, 40, 60), 0.97, line=10, rotation=rotation))  # 0.8 of the others: kept
        assert [s.text for s in parse_signs(words) if s.kind == "numeral"] == ["51", "52", "53", "54", "55"]
    # with fewer than four numerals on the sheet nothing is judged by size
    words = [TextBox("51", (100, 100, 170, 150), 0.97, line=1), TextBox("52", (100, 400, 170, 450), 0.97, line=2),
             TextBox("45", (900, 900, 931, 919), 0.9, line=3)]
    assert [s.text for s in parse_signs(words) if s.kind == "numeral"] == ["51", "52", "45"]


def test_a_lone_digit_on_a_sheet_numbered_in_hundreds_is_dropped():
    hundreds = [word(t, 300 * i, i + 1) for i, t in enumerate(("700", "705", "710"))]
    assert [s.text for s in parse_signs(hundreds + [word("9", 50, 9)]) if s.kind == "numeral"] == ["700", "705", "710"]
    # beside two-digit signs a one-digit sign stays ("1", "10", "12", "100")
    mixed = hundreds + [word("12", 1200, 5), word("1", 50, 9)]
    assert sorted(s.text for s in parse_signs(mixed) if s.kind == "numeral") == ["1", "12", "700", "705", "710"]
