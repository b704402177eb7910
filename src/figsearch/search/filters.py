"""Which candidate figures a query's filters let through (checked by the store, per candidate batch)."""

from __future__ import annotations

import re

from figsearch.errors import InputError
from figsearch.search.query import Filters
from figsearch.store import Collection

_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def normalise_date(value: str, name: str = "date") -> str:
    """A publication-date bound as the filters take it: YYYY, YYYY-MM or YYYY-MM-DD of a real date, its month and
    day written with two digits ("2021-3" -> "2021-03"). InputError naming ``name`` otherwise: the CLI and the
    HTTP API take the same forms ('2021-13' found nothing, silently; the API refused '2017' alone)."""
    import datetime as dt

    match = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", value.strip())
    try:
        if match is None:
            raise ValueError("expected YYYY, YYYY-MM or YYYY-MM-DD")
        year, month, day = match.group(1), match.group(2), match.group(3)
        dt.date(int(year), int(month or 1), int(day or 1))  # the month and day exist
    except ValueError as exc:
        raise InputError(f"{name}={value!r} is not a date: {exc}") from None
    return "-".join([year] + [f"{int(part):02d}" for part in (month, day) if part])


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
