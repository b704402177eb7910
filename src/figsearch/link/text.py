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
    rows = collection.db.execute(
        """SELECT DISTINCT s.idx, s.text FROM figure_sentences fs
           JOIN sentences s ON s.publication_number = fs.publication_number AND s.idx = fs.sentence_idx
           WHERE fs.figure_id = ? ORDER BY s.idx""",
        (figure.figure_id,),
    ).fetchall()
    texts = [r["text"] for r in rows]
    if figure.description and figure.description not in texts:
        texts.insert(0, figure.description)
    if not texts:
        title = collection.db.execute(
            "SELECT title FROM patents WHERE publication_number=?", (figure.patent,)
        ).fetchone()
        if title and title[0]:
            texts.append(title[0])
    return texts
