"""The collection's texts for a drawing query without words (``Query.neighbour_text``, mode ``visual``; stop 23).

A drawing searched alone finds drawings that *look* alike. The collection's texts say what its drawings *are*
(titles, figure descriptions), so the drawing's nearest visual neighbours lend theirs: the text query vector is
the normalised sum of the stored text vectors of the visual list's first ``NEIGHBOURS`` figures that have text,
each weighted max(0, cos)^``ALPHA`` by its visual cosine (the weights of α-query expansion, search/rerank.py).
That vector searches the text index, and the two lists are fused as ``(1 - WEIGHT) * visual + WEIGHT * text``
(fusion's ``text_weight`` rule: a figure without text scores 0 for it), the visual list re-ranked as the visual
mode re-ranks it. It is pseudo-relevance feedback across the two channels: of a drawing query nothing but its
image is used, and the texts are the collection's.

Chosen on the training side's held-out validation sets (docs/encoder.md, "Stop 23"), where it beat the visual
channel alone on same-patent, among all and class level. The text adapter's direct cross score
cos(v_query, A(t_figure)) was tried first and lost among all: the adapter maps the texts it was trained on next to
their drawings, so every trained-on figure of a collection is lifted.
"""

from __future__ import annotations

import numpy as np

#: the visual list's first NEIGHBOURS figures with text lend their texts
NEIGHBOURS = 3
#: their weights: max(0, visual cosine) ** ALPHA
ALPHA = 3.0
#: the text channel's share of the fused score (fusion's text_weight rule)
WEIGHT = 0.6
#: how far down the visual list neighbours with text are looked for
LOOK = 50


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
