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


def _blocks(lines: list[tuple[list[str], tuple | None]]) -> list[list[int]]:
    """Lines (words, box) grouped into blocks: a label lettered over two or three lines in one box
    ("RECORDING" over "CONTROL UNIT") is one phrase. Two lines join when they overlap horizontally
    and the gap between them is under their height; blocks in reading order (top, then left)."""
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    boxed = [(i, box) for i, (_, box) in enumerate(lines) if box is not None]
    for a, (i, p) in enumerate(boxed):
        for j, q in boxed[a + 1:]:
            height = max(p[3] - p[1], q[3] - q[1], 1)
            overlap = min(p[2], q[2]) - max(p[0], q[0])
            gap = max(q[1] - p[3], p[1] - q[3])
            if overlap > 0 and gap < height:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(lines)):
        groups.setdefault(root(i), []).append(i)
    key = lambda i: (lines[i][1][1], lines[i][1][0]) if lines[i][1] else (i, 0)  # noqa: E731
    blocks = [sorted(members, key=key) for members in groups.values()]
    return sorted(blocks, key=lambda members: min(members))


def words_text(words: Iterable[DrawingWord | str]) -> str | None:
    """The words of a drawing as one text: each text line a phrase (the lines of one lettered box
    joined), distinct phrases in reading order joined by "; ", lower-cased (drawings letter in
    capitals); None when there are none."""
    lines: dict[int, tuple[list[str], list]] = {}
    for position, word in enumerate(words):
        text, line, box = (word, -1 - position, None) if isinstance(word, str) else (word.text, word.line, word.box)
        text = " ".join(text.split())
        if text:
            entry = lines.setdefault(line, ([], []))
            entry[0].append(text.lower())
            if box:
                entry[1].append(box)
    ordered = [(texts, (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
                        max(b[3] for b in boxes)) if boxes else None) for texts, boxes in lines.values()]
    phrases = [" ".join(" ".join(ordered[i][0]) for i in block) for block in _blocks(ordered)]
    return "; ".join(dict.fromkeys(phrases)) or None


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
