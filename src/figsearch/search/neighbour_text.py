"""The collection's texts for a drawing query without words (``Query.neighbour_text``, modes ``visual`` and ``auto``).

A drawing searched alone finds drawings that *look* alike. The collection's texts say what its drawings *are*
(titles, figure descriptions), so the drawing's nearest visual neighbours lend theirs: the text query vector is
the normalised sum of the stored text vectors of the visual list's first ``NEIGHBOURS`` figures that have text,
each weighted max(0, cos)^``ALPHA`` by its visual cosine (the weights of α-query expansion, search/rerank.py).
That vector searches the text index, and the two lists are fused as ``(1 - WEIGHT) * visual + WEIGHT * text``
(a figure without text scores its visual score alone, below), the visual list re-ranked as the visual mode
re-ranks it. It is pseudo-relevance feedback across the two channels: of a drawing query nothing but its
image is used, and the texts are the collection's.

Stop 24 (docs/neighbour-text.md): two rules make it safe in a collection that mixes figures with and without text,
where a drawing's own patent may have none (the design PDFs of the shared data). A drawing lends only when its
``GATE`` nearest figures have text: otherwise its nearest figures, likely its own textless sheets, say nothing,
and texts borrowed from further down would lift other patents above them; it is searched by its look alone. And a
candidate without text is scored by its visual score alone, not by (1 - WEIGHT) times it, so that the texts lent
do not push every figure without text below every figure with text.

Chosen on the training side's held-out validation sets (docs/encoder.md, "Stop 23"), where it beat the visual
channel alone on same-patent, among all and class level. The text adapter's direct cross score
cos(v_query, A(t_figure)) was tried first and lost among all: the adapter maps the texts it was trained on next to
their drawings, so every trained-on figure of a collection is lifted.
"""

from __future__ import annotations

import numpy as np

from figsearch.search.fusion import Fused
from figsearch.search.fusion import fuse as fuse_lists

#: the visual list's first NEIGHBOURS figures with text lend their texts
NEIGHBOURS = 3
#: their weights: max(0, visual cosine) ** ALPHA
ALPHA = 3.0
#: the text channel's share of the fused score (fusion's text_weight rule)
WEIGHT = 0.6
#: how far down the visual list neighbours with text are looked for
LOOK = 50
#: lend only when the visual list's first GATE figures all have text (stop 24; 0 would always lend)
GATE = 1


def lends(visual: list[tuple[str, float]], texts: dict[str, np.ndarray] | set[str], gate: int | None = None) -> bool:
    """Whether a drawing borrows: its visual list's (best first) first ``gate`` figures all have text.

    In a collection mixing figures with and without text, a drawing whose nearest figure has no text usually is
    a sheet of a patent without text, among its own sheets; the first figures with text further down belong to
    other patents, and their texts would rank those above the drawing's own sheets."""
    gate = GATE if gate is None else gate
    head = visual[:gate]
    return len(head) == gate and all(f in texts for f, _ in head)


def fuse(lists: dict[str, list[tuple[str, float]]], exact: dict[str, dict[str, float]], weight: float = WEIGHT) -> list:
    """The visual and the lent text list fused as ``(1 - weight) * visual + weight * text``; a figure without text
    (no text score in either) scores its visual score alone (stop 24: fusion's rule would give it 0 for the text,
    and every figure with text would outrank it)."""
    fused = [item if "text" in item.scores else Fused(item.figure_id, item.scores.get("visual", 0.0), item.scores)
             for item in fuse_lists(lists, exact, mode="avg", text_weight=weight)]
    fused.sort(key=lambda f: (-round(f.score, 9), f.figure_id))  # fusion.fuse's order and tie rule
    return fused


def text_vector(visual: list[tuple[str, float]], texts: dict[str, np.ndarray], neighbours: int = NEIGHBOURS,
                alpha: float = ALPHA) -> tuple[np.ndarray | None, list[str]]:
    """(unit text query vector, the figures that lent their texts) from a visual list (best first) and the
    stored text vectors of its figures; (None, []) when none of them has text or every weight is 0."""
    lenders = [(f, s) for f, s in visual if f in texts][:neighbours]
    if not lenders:
        return None, []
    weights = np.maximum(np.array([s for _, s in lenders], dtype=np.float32), 0.0) ** alpha
    summed = weights @ np.stack([np.asarray(texts[f], dtype=np.float32) for f, _ in lenders])
    norm = float(np.linalg.norm(summed))
    if norm == 0.0:
        return None, []
    return (summed / norm).astype(np.float32), [f for f, _ in lenders]
