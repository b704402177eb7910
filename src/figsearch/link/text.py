"""The text of a figure for the text encoder.

The reference system embeds the description sentences that mention the reference signs
read in a figure and averages them; figsearch adds the figure's brief description and the patent's
title (until linking has run for a figure, these two stand alone).
"""

from __future__ import annotations

from figsearch.records import Figure
from figsearch.store import Collection


def figure_sentences(collection: Collection, figure: Figure) -> list[str]:
    """The sentences whose mean embedding is the figure's text vector (may be empty).

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
