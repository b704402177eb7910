"""What every repository shares: the collection's connection (per thread for readers) and its transaction."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from figsearch.store.collection import Collection


class Repository:
    """One group of tables. Writes join the caller's ``collection.transaction()`` when there is one."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection

    @property
    def db(self) -> sqlite3.Connection:
        return self._collection.db

    def transaction(self):
        return self._collection.transaction()


def column(row: sqlite3.Row, name: str, default=None):
    """A column that older schema versions lack (a reader does not upgrade what it opens)."""
    return row[name] if name in row.keys() else default


def placeholders(values) -> str:
    return ",".join("?" * len(values))
