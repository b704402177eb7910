"""Which candidate figures a query's filters let through (checked in SQL, per candidate batch)."""

from __future__ import annotations

import re

from figsearch.errors import InputError
from figsearch.records import FigureRole
from figsearch.search.query import Filters
from figsearch.store import Collection

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def check_filters(filters: Filters) -> None:
    for name in ("date_from", "date_to"):
        value = getattr(filters, name)
        if value is not None and not _DATE.match(value):
            raise InputError(f"filter {name}={value!r} is not a date: use YYYY, YYYY-MM or YYYY-MM-DD")
    if filters.date_from and filters.date_to and filters.date_from[: len(filters.date_to)] > filters.date_to:
        raise InputError(f"filter date_from={filters.date_from} is after date_to={filters.date_to}")


def _normal_code(code: str) -> str:
    return code.replace(" ", "").upper()


def passing(
    collection: Collection, figure_ids: list[str], filters: Filters, exclude_patents: set[str], exclude_figures: set[str]
) -> dict[str, str]:
    """figure id -> patent, for the candidates that are drawings and pass every filter."""
    clauses, args = [], []
    if filters.date_from:
        clauses.append("p.publication_date >= ?")
        args.append(filters.date_from)
    if filters.date_to:
        # a partial bound ("2021", "2021-06") takes in the whole year or month
        clauses.append("substr(p.publication_date, 1, ?) <= ?")
        args.extend([len(filters.date_to), filters.date_to])
    if filters.office:
        clauses.append("p.office = ?")
        args.append(filters.office.strip().upper())
    if filters.classification_prefix:
        prefix = _normal_code(filters.classification_prefix)
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(
            "EXISTS (SELECT 1 FROM classifications c WHERE c.publication_number = p.publication_number "
            "AND upper(replace(c.code, ' ', '')) LIKE ? ESCAPE '\\')"
        )
        args.append(escaped + "%")
    where = "".join(f" AND {c}" for c in clauses)
    allowed: dict[str, str] = {}
    for start in range(0, len(figure_ids), 500):
        part = figure_ids[start : start + 500]
        rows = collection.db.execute(
            f"""SELECT f.figure_id, f.publication_number FROM figures f
                JOIN patents p ON p.publication_number = f.publication_number
                WHERE f.role = ? AND f.figure_id IN ({",".join("?" * len(part))}){where}""",
            (FigureRole.DRAWING.value, *part, *args),
        )
        for figure_id, patent in rows:
            if patent not in exclude_patents and figure_id not in exclude_figures:
                allowed[figure_id] = patent
    return allowed
