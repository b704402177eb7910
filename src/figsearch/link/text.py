"""The text of a figure for the text encoder.

The reference system embeds the description sentences that mention the reference signs
read in a figure and averages them; figsearch adds the figure's brief description and the patent's
title (until linking has run for a figure, these two stand alone), and the words printed in the
drawing itself (box labels such as "IMAGE PROCESSING UNIT", flowchart steps), which say what a
block diagram or a flowchart is about even where no sentence is linked to it.

The drawing's words are one text, ``words_text``, built the same way for a stored figure and for
an uploaded drawing (``figsearch.search``), so the two meet in the same place of the text space.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from figsearch.records import DrawingWord, Figure
from figsearch.store import Collection

#: the share of a figure's text vector taken by its drawing's words when it has sentences too:
#: vector = (1 - WORDS_SHARE) * mean(sentences) + WORDS_SHARE * words. Chosen on training-side data
#: only (``benchmarks/drawing_words_eval.py --sweep``; docs/ocr.md, "Words in drawings").
WORDS_SHARE = 0.25


@dataclass
class FigureText:
    """What a figure's text vector is made of."""

    #: linked sentences, brief description, title (may be empty)
    sentences: list[str] = field(default_factory=list)
    #: the words printed in the drawing as one text (``words_text``), or None when it has none
    words: str | None = None

    def __bool__(self) -> bool:
        return bool(self.sentences or self.words)


def words_text(words: Iterable[DrawingWord | str]) -> str | None:
    """The words of a drawing as one text: each text line a phrase, distinct phrases in reading
    order joined by "; ", lower-cased (drawings letter in capitals); None when there are none."""
    lines: dict[int, list[str]] = {}
    for position, word in enumerate(words):
        text, line = (word, -1 - position) if isinstance(word, str) else (word.text, word.line)
        text = " ".join(text.split())
        if text:
            lines.setdefault(line, []).append(text.lower())
    phrases = list(dict.fromkeys(" ".join(parts) for parts in lines.values()))
    return "; ".join(phrases) or None


def figure_sentences(collection: Collection, figure: Figure) -> list[str]:
    """The sentences of the figure's text vector (may be empty): linked sentences, brief
    description, title.

    The patent's title is always one of them: it names the thing drawn ("Shaving blade
    cartridge"), where a brief description often says only the view ("FIG. 2 is a bottom view
    thereof."), the same words in every design patent.
    """
    texts = collection.links.linked_texts(figure.figure_id)
    if figure.description and figure.description not in texts:
        texts.insert(0, figure.description)
    title = collection.patents.title(figure.patent)
    if title and title not in texts:
        texts.append(title)
    return texts


def figure_words(collection: Collection, figure: Figure) -> list[DrawingWord]:
    """The words printed in the figure's drawing, as the sign reader stored them."""
    return collection.words.of(figure.figure_id)


def figure_text(collection: Collection, figure: Figure) -> FigureText:
    """Everything the figure's text vector is made of: its sentences and its drawing's words."""
    sentences = [s.strip() for s in figure_sentences(collection, figure) if s and s.strip()]
    return FigureText(sentences, words_text(figure_words(collection, figure)))
