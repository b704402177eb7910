"""What the routes share: the backend behind a gate, the collection's files, the limits.

Its own module so that the routes (which read it) and the application (which makes it and
mounts the routes) do not import each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from figsearch.errors import NotFound
from figsearch.records import Figure
from figsearch.search.api import SearchBackend
from figsearch.server.uploads import Limits
from figsearch.store import Collection

T = TypeVar("T")


class ServerState:
    """What the routes share: the backend (behind a gate), the collection's files, the limits."""

    def __init__(self, backend: SearchBackend, collection_root: Path, limits: Limits, concurrency: int) -> None:
        self.backend = backend
        self.root = Path(collection_root)
        self.limits = limits
        # the service's thread safety is not part of its contract: by default one call at a time
        self._gate = threading.BoundedSemaphore(max(1, concurrency))
        self._local = threading.local()

    async def call(self, fn: Callable[..., T], *args) -> T:
        """Run a blocking backend call in the thread pool, through the gate."""

        def gated() -> T:
            with self._gate:
                return fn(*args)

        return await run_in_threadpool(gated)

    def collection(self) -> Collection:
        # one read-only connection per worker thread; SQLite's WAL lets them read while an ingest writes
        collection = getattr(self._local, "collection", None)
        if collection is None:
            collection = Collection.open(self.root)
            self._local.collection = collection
        return collection

    def figure_file(self, figure_id: str, which: str) -> tuple[Figure, Path]:
        """The stored image (``which`` = "image") or thumbnail of a figure, never a path outside the collection."""
        collection = self.collection()
        figure = collection.figure(figure_id)
        relative = figure.thumbnail_path if which == "thumbnail" else None
        relative = relative or figure.image_path
        if not relative:
            raise NotFound(f"figure {figure_id!r} has no stored image")
        path = collection.path(relative)
        if not path.is_file():
            raise NotFound(f"the image file of figure {figure_id!r} ({relative}) is missing from the collection")
        return figure, path
