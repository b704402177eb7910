"""Reference signs in hand-written sentences: suffixes, lists, ranges, quantities, years, claims."""

from __future__ import annotations

import pytest

from figsearch.link.glossary import brief_clause, brief_descriptions, expand_label_list, glossary, label_keys
from figsearch.link.mentions import Mention, find_mentions, mentioned_signs
from figsearch.link.sentences import split_sentences
from figsearch.records import Sentence


def signs(sentence: str) -> list[str]:
    return [m.sign if m.last is None else f"{m.sign}..{m.last}" for m in find_mentions(sentence)]


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("The thermal head 14 presses the ribbon 18 onto the platen roller 16.", ["14", "18", "16"]),
        # a numbered series, as drawings print it ("104-1" ... "104-N"; figsearch.ocr.signs reads both)
        ("The user devices 104-1, 104-2, ..., 104-N reach the server 102.", ["104-1", "104-2", "104-N", "102"]),
        ("The devices 104-1 through 104-n are shown; a 12-V battery 20 feeds them.", ["104-1", "104-n", "20"]),
        ("The arms 14a and 14b and the arm 14' carry the frame 102-1.", ["14a", "14b", "14'", "102-1"]),
        ("The rollers 22, 24 and 26 feed the body (12).", ["22", "24", "26", "12"]),
        ("The rollers 22, 24, and 26 or the guide 28 are driven.", ["22", "24", "26", "28"]),
        ("The blades 12-16 and the vanes 20 to 24 sit on the hub 10.", ["12..16", "20..24", "10"]),
        ("The sub-arms 14a-14d are joined.", ["14a..14d"]),
        # an upper-case suffix after two digits or more, as drawings print it (figsearch.ocr.signs reads "114A")
        ("The module 210A and the sensors 132B-132D feed the device 102.", ["210A", "132B..132D", "102"]),
        ("A 3D printer 14 and a 5G modem 16 are joined by the cable 114AB.", ["14", "16"]),
        ("The hub 10 is 12 mm thick and turns at 300 rpm, i.e. 45 % or 30° faster.", ["10"]),
        ("The frame has 2 rotors, a width of about 5 and comprises 3 layers.", []),
        ("The device was developed in 2005 and filed on Jun. 14, 2005 or 2005-06-14.", []),
        ("A method according to claim 1, or claims 3 to 5, wherein the rotor 12 turns.", ["12"]),
        ("As shown in FIG. 3 and FIGS. 4A-4C, and in Table 2, the shaft 30 turns.", ["30"]),
        ("See U.S. Pat. No. 5,123,456 and JP 2003-123456; a ratio of 1:2 and 2.5 mm.", []),
        ("The value x = 12 and the pressure p < 40 are kept.", []),
        ("The turbine engine 10 defines an axial direction A and a radial direction R.", ["10"]),
        ("A range of 400 psi to 800 psi and of 500° F. to 700° F. is kept by the method 700.", ["700"]),
        ("At step 705 the controller 604 reads the sensor 80.", ["705", "604", "80"]),
        ("The fan section 14 and the fuel supply lines 102 are shown.", ["14", "102"]),
    ],
)
def test_signs_in_sentences(sentence, expected):
    assert signs(sentence) == expected


def test_terms_name_what_precedes_a_sign_and_lists_share_them():
    mentions = find_mentions("A first guide roller 22 and the feed rollers 24 and 26 support the thermal head 14.")
    assert [(m.sign, m.term) for m in mentions] == [
        ("22", "first guide roller"), ("24", "feed rollers"), ("26", "feed rollers"), ("14", "thermal head"),
    ]


@pytest.mark.parametrize(
    "mention, sign, covers",
    [
        (Mention("14", 0, 2), "14", True),
        (Mention("14", 0, 2), "14a", True),
        (Mention("14a", 0, 3), "14", True),
        (Mention("14a", 0, 3), "14b", False),
        (Mention("14", 0, 2), "140", False),
        (Mention("12", 0, 5, last="16"), "14", True),
        (Mention("12", 0, 5, last="16"), "18", False),
        (Mention("14a", 0, 7, last="14d"), "14c", True),
        (Mention("14a", 0, 7, last="14d"), "14e", False),
    ],
)
def test_what_a_mention_covers(mention, sign, covers):
    assert mention.covers(sign) is covers


def test_sentence_splitter_knows_patent_abbreviations():
    text = (
        "As shown in FIG. 1, the head 14 is pressed. FIGS. 2 and 3 are views. The roller (e.g. 16) turns "
        "approx. 5 mm. See U.S. Pat. No. 5,123,456. It is 2.5 mm wide! Done? Yes."
    )
    assert split_sentences(text) == [
        "As shown in FIG. 1, the head 14 is pressed.",
        "FIGS. 2 and 3 are views.",
        "The roller (e.g. 16) turns approx. 5 mm.",
        "See U.S. Pat. No. 5,123,456.",
        "It is 2.5 mm wide!",
        "Done?",
        "Yes.",
    ]
    assert split_sentences("") == [] and split_sentences("   ") == []


def test_the_word_before_a_period_is_found_in_its_own_token_as_in_the_whole_text():
    """``_is_boundary`` looks for the word before a period from the last space before it (long
    paragraphs were quadratic); each search finds what the search over all the text before the
    period found."""
    from figsearch.link import sentences

    real = sentences._WORD_BEFORE
    searched = []

    class Both:
        def search(self, text, pos, endpos):
            whole = real.search(text[:endpos])  # as it was: text[:end] without its closing quotes
            token = real.search(text, pos, endpos)
            searched.append((whole and whole.group(1), token and token.group(1)))
            return token

    texts = [
        "See U.S. Pat. No. 5,123,456. Then \"Fig. 3.\" Next (approx. 5 mm.) The part A. The J. Smith e.g. Z.",
        "Der Hebel 4 ist am 1. Januar 1998 bewegt. Das Teil ca. 3 mm. Dann usw. Ende z.B. Hier.",
        "La tige (réf. 12.) Puis etc. Fin... Encore Mme. Dupont. 3.5. Fin. x.y.z. Ça.",
    ]
    sentences._WORD_BEFORE = Both()
    try:
        for text, lang in zip(texts, ("en", "de", "fr")):
            sentences.split_sentences(text, lang)
    finally:
        sentences._WORD_BEFORE = real
    assert len(searched) >= 15
    assert all(whole == token for whole, token in searched)


def test_a_sentence_without_a_digit_names_no_sign_in_any_language():
    """``find_mentions`` answers [] at once for a sentence without a digit: the full rules agree."""
    from figsearch.link import mentions

    plain = [
        "The housing is closed by a lid, see the figures.",
        "Das Gehäuse ist durch einen Deckel verschlossen, und der Hebel greift ein.",
        "Le boîtier est fermé par un couvercle, et le levier (voir figure) tourne.",
        "The unit A, B and C; the axis X-Y, the part II.",
    ]
    for lang in ("en", "de", "fr", None):
        for sentence in plain:
            assert find_mentions(sentence, lang) == []
    always = mentions._ANY_DIGIT
    try:
        mentions._ANY_DIGIT = __import__("re").compile("")  # no shortcut: the whole rules run
        for lang in ("en", "de", "fr", None):
            for sentence in plain:
                assert find_mentions(sentence, lang) == []
        assert signs("the roller ٣ turns") == []  # an Arabic-Indic digit is no sign either way
    finally:
        mentions._ANY_DIGIT = always
    assert signs("the roller ٣ turns") == []


def test_glossary_takes_the_most_frequent_name():
    texts = [
        "The thermal head 14 is arranged opposite to a platen roller 16.",
        "The head 14 moves.",
        "The thermal head 14 heats the ink ribbon 18.",
    ]
    sentences = [Sentence("EP1", i, t) for i, t in enumerate(texts)]
    entries = {e.sign: (e.term, e.sentence_index) for e in glossary("EP1", sentences)}
    assert entries == {"14": ("thermal head", 0), "16": ("platen roller", 0), "18": ("ink ribbon", 2)}
    assert mentioned_signs(texts) == {"14", "16", "18"}


def test_brief_descriptions_and_labels():
    texts = [
        "BRIEF DESCRIPTION OF THE DRAWINGS",
        "FIG. 1 is a side view of a printer; FIG. 2 is a block diagram.",
        "FIGS. 3A and 3B show the head.",
        "As shown in FIG. 4, the roller turns.",
        "FIG. 4 is a section along IV-IV of FIG. 1.",
    ]
    found = brief_descriptions([Sentence("X", i, t) for i, t in enumerate(texts)])
    assert found == {"1": 1, "3A": 2, "3B": 2, "4": 4}
    assert label_keys("FIG. 3a") == ["3A"] and label_keys("FIGS. 8, 9") == ["8", "9"] and label_keys(None) == []
    assert expand_label_list("1-3") == ["1", "2", "3"] and expand_label_list("5A to 5C") == ["5A", "5B", "5C"]


def test_brief_clause_cuts_a_sentence_that_describes_every_figure():
    text = "FIG. 1 is a side view of a printer; FIG. 2 is a block diagram; and FIGS. 3A and 3B show the head."
    assert brief_clause(text, "1") == "FIG. 1 is a side view of a printer."
    assert brief_clause(text, "3B") == "FIGS. 3A and 3B show the head."
    assert brief_clause("FIG. 4 is a section along IV-IV of FIG. 1.", "4") == "FIG. 4 is a section along IV-IV of FIG. 1."


def test_links_check_each_numeral_only_where_it_can_be_covered_with_the_same_result():
    """``PatentText.links`` looks a numeral up in an index of the mentions' numbers (and ranges)
    instead of trying it against every sentence: the links, and their order (sentences, then
    numerals sorted), must be those of trying every mention of every sentence."""
    from figsearch.link.patent_text import PatentText
    from figsearch.records import Paragraph, Patent, ReferenceSign, SentenceLink

    paragraphs = [
        "FIG. 1 shows a printer 10 with a thermal head 14 and a platen roller 16.",
        "The arms 14a and 14b hold the frame 102; the rollers 12-16 turn. The guides 20a-20c are fixed.",
        "The head 14' is cooled by a fan 30 and the spring 7. Nothing is numbered here.",
        "The levers 40 to 44 and the arm 14c move; the rollers 16-12 are a typo.",
    ]
    patent = Patent("EP1000001A1", "EP", "1000001", "A1", title="Printer",
                    paragraphs=[Paragraph(text=t, number=f"{i:04d}") for i, t in enumerate(paragraphs)])
    text = PatentText.of(patent)
    read = ["14", "14a", "14b", "16", "13", "20", "20b", "20d", "102", "7", "42", "99", "30", "14'", "0"]
    signs = [ReferenceSign(s, "numeral", None, 90) for s in read] + [ReferenceSign("FIG. 1", "figure_label", None, 90)]
    numerals = sorted(read)
    every = [SentenceLink(sentence.index, "sign", sign) for sentence, mentions in zip(text.sentences, text.mentions)
             for sign in numerals if any(m.covers(sign) for m in mentions)]
    got = text.links(None, signs)
    assert [link for link in got if link.reason == "sign"] == every
    assert {link.sign for link in every} >= {"14", "14a", "13", "20b", "102", "42"}  # ranges and sub-letters among them
    assert not any(link.sign in ("20d", "99", "0") for link in every)


def test_glossary_takes_the_mentions_found_already_and_names_the_same_signs():
    from figsearch.link.glossary import glossary

    sentences = [Sentence("EP1", i, t) for i, t in enumerate(split_sentences(
        "A thermal printer 10 has a thermal head 14. The head 14 presses the roller 16. The thermal head 14 is hot."))]
    found = [find_mentions(s.text) for s in sentences]
    assert glossary("EP1", sentences, "en", found) == glossary("EP1", sentences) != []
    with pytest.raises(ValueError, match="2 mention lists for 3 sentences"):
        glossary("EP1", sentences, "en", found[:2])
