"""Which candidate figures a query's filters let through (checked by the store, per candidate batch)."""

from __future__ import annotations

import re

from figsearch.errors import InputError
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


def passing(
    collection: Collection, figure_ids: list[str], filters: Filters, exclude_patents: set[str], exclude_figures: set[str]
) -> dict[str, str]:
    """figure id -> patent, for the candidates that are drawings and pass every filter."""
    allowed = collection.patents.drawings_passing(
        figure_ids,
        date_from=filters.date_from,
        date_to=filters.date_to,
        office=filters.office.strip().upper() if filters.office else None,
        classification_prefix=filters.classification_prefix,
    )
    return {f: p for f, p in allowed.items() if p not in exclude_patents and f not in exclude_figures}
