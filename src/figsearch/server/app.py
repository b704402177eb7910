"""The FastAPI application: the JSON API under /api, the web page at /, the OpenAPI schema.

``create_app`` takes the search backend (``figsearch.search.service.SearchService`` in
``figsearch serve``; any object of the ``SearchBackend`` protocol in tests) and the collection
directory whose image files it serves. Routes only translate HTTP to the backend's calls, which
run in bounded thread pools (figsearch.server.state).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from figsearch import __version__
from figsearch.search.api import SearchBackend
from figsearch.server.auth import TokenAuth, hide_tokens_in_logs
from figsearch.server.balance import BalanceConnections, ConnectionBalance, peers_dir, supervised
from figsearch.server.errors import ServerBusy, error_body, install_error_handlers, redact_paths
from figsearch.server.routes import router
from figsearch.server.state import (DEFAULT_QUEUE, LOOP_PRIORITY_BOOST, ServerState, raise_thread_priority,
                                    restore_thread_priority)
from figsearch.server.uploads import Limits, size_text, too_large

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413 before the multipart parser spools it.

    A declared Content-Length is checked up front; a chunked body is read up to the limit and
    replayed (so memory per request stays under the limit).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, limits: Limits | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: the upload limit the refusal names (the body may be a little larger: the form's other fields)
        self.limits = limits

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
                await self._too_large(send, size_text(size))
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
                await self._too_large(send, f"more than {size_text(self.max_bytes)}")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _too_large(self, send: Send, what: str) -> None:
        if self.limits is not None:
            message = str(too_large("the request body", what, self.limits))
        else:
            message = f"the request body is {what}; the limit is {size_text(self.max_bytes)}"
        await self._refuse(send, 413, "too_large", message)

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

    @staticmethod
    def host_of(scope: Scope) -> str:
        return dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").lower()

    def allows(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = self.host_of(scope)
            if not self.allows(host):
                await BodyLimit._refuse(send, 400, "bad_host", f"host {host!r} is not served here")
                return
        await self.app(scope, receive, send)


#: the health route, which FastHealth answers before every other layer
HEALTH_PATH = "/api/health"


class HealthAnswer:
    """What ``GET /api/health`` answers, outside every other layer: no connection balance (a probe's
    kept-alive connection is never closed to balance the workers, nor counted), no token check (health
    is public), no routing, validation or serialisation by FastAPI. The answer is the route's
    (``routes.health``, which stays for the OpenAPI schema and for apps without this layer), byte for
    byte: 200 with the collection's name, or 503 with ``Retry-After`` when the health thread's last
    reading of the database failed. A foreign Host header is not wanted here: it goes on to HostCheck,
    which refuses it. The ``Server-Timing`` header says how late the event loop ran lately and why
    (``lag``, ``lag-busy``, ``lag-runq``, ms: ``state.LoopLag``), so a slow probe can be told apart from a
    slow loop. Used by ``FastHealth`` (the outermost ASGI layer) and by ``figsearch.server.protocol``,
    which answers a probe in its connection's read callback, before any queued request's task."""

    def __init__(self, state: ServerState, hosts: HostCheck | None = None) -> None:
        self.state = state
        self.hosts = hosts

    def wanted(self, scope: Scope) -> bool:
        """Whether ``scope`` is a health probe this layer answers."""
        return (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"] in (HEALTH_PATH, scope.get("root_path", "") + HEALTH_PATH)
                and (self.hosts is None or self.hosts.allows(HostCheck.host_of(scope))))

    def messages(self) -> tuple[Message, Message]:
        """The answer's ASGI messages (``http.response.start`` and ``http.response.body``)."""
        state = self.state
        headers = [(b"server-timing", state.loop_lag.server_timing().encode())]
        try:
            state.health()
            status, body = 200, {"status": "ok", "collection": state.root.name}
        except ServerBusy as exc:
            status = 503
            body = error_body(503, exc.code, redact_paths(str(exc), state.root))
            headers.append((b"retry-after", str(exc.retry_after).encode()))
        # as FastAPI's JSONResponse renders it
        payload = json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
        return ({"type": "http.response.start", "status": status, "headers": [
                    (b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json"),
                    *headers]},
                {"type": "http.response.body", "body": payload})


class FastHealth:
    """ASGI middleware: answers ``GET /api/health`` itself (``HealthAnswer``), before every other layer."""

    def __init__(self, app: ASGIApp, answer: HealthAnswer) -> None:
        self.app = app
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.answer.wanted(scope):
            await self.app(scope, receive, send)
            return
        start, body = self.answer.messages()
        await send(start)
        await send(body)


#: the names a loopback-bound server answers to
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]


def create_app(
    backend: SearchBackend,
    collection_root: str | Path,
    *,
    limits: Limits | None = None,
    threads: int | None = None,
    queue: int = DEFAULT_QUEUE,
    allowed_hosts: list[str] | None = None,
    token_digest: bytes | None = None,
    balance: bool | None = None,
    balance_dir: Path | None = None,
) -> FastAPI:
    """The figsearch web application over ``backend``, serving the files of ``collection_root``.

    ``threads``: backend calls run at once (default: from the machine's cores); ``queue``: calls
    that may wait beyond those before the server answers 503 with Retry-After.
    ``allowed_hosts``: when given, requests for other Host names are refused (``figsearch serve``
    passes the loopback names when it listens on loopback).
    ``token_digest``: when given (figsearch.server.auth.token_digest of the access token), every
    route but /api/health and the page's own files needs the token.
    ``balance``: spread kept-alive connections over the sibling worker processes
    (figsearch.server.balance); default: when this process is a worker of ``serve --workers N``.
    ``balance_dir``: where the siblings publish their counts (default: from the supervisor process).
    """
    state = ServerState(backend, Path(collection_root), limits or Limits(), threads=threads, queue=queue)
    balancer = (ConnectionBalance(balance_dir or peers_dir()) if (supervised() if balance is None else balance)
                else None)
    state.balance = balancer

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.open()
        state.loop_lag.start()
        state.start_warming()
        if balancer is not None:
            balancer.start()  # from the start, before any request: see figsearch.server.balance
        # last, so that the threads started above keep the process's priority (a thread inherits its creator's)
        niceness_before = raise_thread_priority(LOOP_PRIORITY_BOOST)
        yield
        restore_thread_priority(niceness_before)
        state.loop_lag.stop()
        if balancer is not None:
            balancer.stop()
        state.close()
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
    app.add_middleware(BodyLimit, max_bytes=state.limits.max_upload_bytes + 64 * 1024, limits=state.limits)
    if token_digest is not None:
        hide_tokens_in_logs()
        app.add_middleware(TokenAuth, digest=token_digest)
    # the host check is outside all but the connection balance: a rebound foreign name learns nothing,
    # not even a 401
    if allowed_hosts is not None:
        app.add_middleware(HostCheck, allowed=allowed_hosts)
    # every response counts, a refused one too, and any of them may close its connection (but health's)
    if balancer is not None:
        app.add_middleware(BalanceConnections, balance=balancer)
    # outermost: health answers before any other layer does any work (the host check's names are its too)
    state.health_answer = HealthAnswer(state, HostCheck(app, allowed_hosts) if allowed_hosts is not None else None)
    app.add_middleware(FastHealth, answer=state.health_answer)
    return app
