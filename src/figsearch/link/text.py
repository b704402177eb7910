"""The text of a figure for the text encoder.

The reference system embeds the description sentences that mention the reference signs
read in a figure and averages them. Until linking has run for a figure, its brief-description
sentence and the patent title stand in.
"""

from __future__ import annotations

from figsearch.records import Figure
from figsearch.store import Collection


def figure_sentences(collection: Collection, figure: Figure) -> list[str]:
    """The sentences whose mean embedding is the figure's text vector (may be empty)."""
    texts = collection.links.linked_texts(figure.figure_id)
    if figure.description and figure.description not in texts:
        texts.insert(0, figure.description)
    if not texts:
        title = collection.patents.title(figure.patent)
        if title:
            texts.append(title)
    return texts
