"""The FastAPI application: the JSON API under /api, the web page at /, the OpenAPI schema.

``create_app`` takes the search backend (``figsearch.search.service.SearchService`` in
``figsearch serve``; any object of the ``SearchBackend`` protocol in tests) and the collection
directory whose image files it serves. Routes only translate HTTP to the backend's calls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from figsearch import __version__
from figsearch.errors import NotFound
from figsearch.records import Figure
from figsearch.search.api import SearchBackend
from figsearch.server.errors import error_body, install_error_handlers
from figsearch.server.uploads import Limits
from figsearch.store import Collection

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
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


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413 before the multipart parser spools it.

    A declared Content-Length is checked up front; a chunked body is read up to the limit and
    replayed (so memory per request stays under the limit).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await self._refuse(send, 400, "bad_request", "Content-Length is not a number")
                return
            if size > self.max_bytes:
                await self._too_large(send, f"{size} bytes")
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._too_large(send, f"more than {self.max_bytes} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, send: Send, what: str) -> None:
        await self._refuse(
            send, 413, "too_large", f"request body is {what}; the limit is {self.max_bytes} bytes"
        )

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, message: str) -> None:
        payload = json.dumps(error_body(status, code, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class HostCheck:
    """Answers only requests addressed to one of ``allowed`` host names.

    A server on loopback is still reachable from a web page the user visits, through DNS
    rebinding (evil.example resolving to 127.0.0.1); such requests carry the foreign name
    in their Host header and are refused here.
    """

    def __init__(self, app: ASGIApp, allowed: list[str]) -> None:
        self.app = app
        self.allowed = {h.lower().strip("[]") for h in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]") not in self.allowed:
                await BodyLimit._refuse(send, 400, "bad_host", f"host {host!r} is not served here")
                return
        await self.app(scope, receive, send)


#: the names a loopback-bound server answers to
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]


def create_app(
    backend: SearchBackend,
    collection_root: str | Path,
    *,
    limits: Limits | None = None,
    concurrency: int = 1,
    allowed_hosts: list[str] | None = None,
) -> FastAPI:
    """The figsearch web application over ``backend``, serving the files of ``collection_root``.

    ``allowed_hosts``: when given, requests for other Host names are refused (``figsearch serve``
    passes the loopback names when it listens on loopback).
    """
    from figsearch.server.routes import router

    state = ServerState(backend, Path(collection_root), limits or Limits(), concurrency)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        close = getattr(backend, "close", None)
        if callable(close):
            close()

    app = FastAPI(
        title="figsearch",
        version=__version__,
        description=(
            "Semantic patent-figure retrieval: search a patent collection's drawings by an image, "
            "a figure of the collection, words, or an image and words together. Every error answers "
            'with `{"error": {"code", "message", "status"}}`.'
        ),
        lifespan=lifespan,
    )
    app.state.figsearch = state
    install_error_handlers(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    # the body limit sits outside everything, so an oversized upload is refused before it is parsed
    app.add_middleware(BodyLimit, max_bytes=state.limits.max_upload_bytes + 64 * 1024)
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)
    return app
