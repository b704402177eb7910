"""A search's hits as CSV, for an examiner's report: one row a hit, the same columns from the CLI
(``figsearch search --csv``) and the HTTP API (``/api/search?format=csv``, the page's "Download CSV").

Works on anything with a hit's fields (``figsearch.Hit``, the API's ``HitOut``), so both ways out
write the same file for the same search.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence

#: the columns every export has, in order; the score of each modality follows ``score``
COLUMNS = ("rank", "patent", "figure_id", "label", "title", "score")
#: sentences and signs are joined with this inside their cell (a sentence may hold commas and semicolons)
JOIN = " | "


def hits_csv(hits: Iterable, modalities: Sequence[str] = ("visual", "text"),
             extra: dict[str, Callable[[object], str]] | None = None) -> str:
    """The hits as CSV text (RFC 4180, CRLF line ends as the csv module writes them): ``COLUMNS``, a
    ``<modality>_score`` column for each of ``modalities`` (empty where that modality did not see the hit),
    ``matched_words``, ``reference_signs``, ``sentences`` (the explaining sentences, best first), then
    ``extra``'s columns (name -> value of a hit, such as the API's Espacenet link)."""
    extra = extra or {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, *(f"{m}_score" for m in modalities), "matched_words", "reference_signs", "sentences",
                     *extra])
    for hit in hits:
        scores = hit.scores or {}
        writer.writerow([
            hit.rank, _cell(hit.patent), _cell(hit.figure_id), _cell(hit.label or ""), _cell(_one_line(hit.title)),
            _score(hit.score), *(_score(scores[m]) if m in scores else "" for m in modalities),
            _cell(" ".join(hit.matched_words or [])), _cell(" ".join(hit.reference_signs or [])),
            _cell(JOIN.join(_one_line(s) for s in hit.sentences or [])),
            *(_cell(value(hit)) for value in extra.values()),
        ])
    return out.getvalue()


def _score(value: float) -> str:
    return str(round(float(value), 6))  # as `figsearch search --json` rounds


#: a cell that starts with one of these is a formula to a spreadsheet (CSV injection): the texts come
#: from patent documents and from the query, so such a cell is written with a leading apostrophe
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())
