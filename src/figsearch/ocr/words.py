"""Phantom words out of a drawing's words: what hatching, shading and cut labels make the reader output.

``drawing_words`` (``figsearch.ocr.drawing``) keeps the words read surely (confidence 0.9) that look
like words; on design drawings, which print no text, that still let through two- and three-letter
tokens read from hatching and shading ("if", "at", "il", "by", "ry", "LOH") and the first letters of
a figure label ("FI", "Fl", "FIC,"). Such a token is the drawing's whole word list, so it made the
figure's text vector, its lexical hits and an upload's query text. ``clean_words`` drops:

- a label fragment: "F" and "I"/"l"/"1" (and "G"/"C"), with no number: what is left of "FIG. n"
  when its number was read as a sign and the rest of the label was not;
- every word of a drawing whose words are all short: when no word has ``MIN_LETTERS_ALONE``
  letters, the drawing prints no text the reader saw whole, and its short tokens are phantoms.
  Short words with a longer neighbour stay ("No", "Yes", "OF", "PT" beside box labels).

Chosen on the *dev* half of ``benchmarks/ocr_words_eval.py``'s training-side truth (docs/ocr.md,
"Stop 27"); a dictionary check was tried and not kept: tesseract's own word list (338,080 words)
holds "if", "ih", "fis" and "ry" alike.
"""

from __future__ import annotations

import re

from figsearch.ocr.base import TextBox

#: a drawing word alone needs this many letters; shorter ones stay only beside such a word
MIN_LETTERS_ALONE = 4
#: what is left of a figure label "FIG. n" read in pieces: "FI", "Fl", "F1", "FIC,", "FIG."
_LABEL_FRAGMENT = re.compile(r"^[Ff][Il1|][GgCc6]?[.,]?$")


def letters(text: str) -> int:
    return sum(c.isalpha() for c in text)


def is_label_fragment(text: str) -> bool:
    return bool(_LABEL_FRAGMENT.match(text.strip()))


def clean_words(words: list[TextBox]) -> list[TextBox]:
    """``words`` (a drawing's, in reading order) without label fragments, and none at all when no
    word has ``MIN_LETTERS_ALONE`` letters (see the module docstring)."""
    kept = [w for w in words if not is_label_fragment(w.text)]
    if not any(letters(w.text) >= MIN_LETTERS_ALONE for w in kept):
        return []
    return kept
