"""The access token of a server that others can reach (``figsearch serve --host 0.0.0.0``).

As in Jupyter: the server prints a URL with ``?token=...``; opening it sets an HttpOnly cookie
for the browser session and redirects to the same page without the token (so it stays out of
the address bar, the history and Referer headers). API clients send ``Authorization: Bearer
<token>``. The page itself and its scripts hold no data and are served to anyone, so that the
page can ask for the token; every other route but ``/api/health`` answers 401 without it.

Only a SHA-256 digest of the token is kept, and a presented token's digest is compared in
constant time (``hmac.compare_digest``). The token is never logged: uvicorn's access log writes
the query string, so a filter blanks any ``token=`` in it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from urllib.parse import parse_qsl, urlencode

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from figsearch.server.errors import error_body

#: routes answered without the token: the liveness check, and the page that asks for the token
PUBLIC_PATHS = frozenset({"/api/health", "/"})
PUBLIC_PREFIXES = ("/static/",)
#: the shortest token accepted from a file or the environment
MIN_TOKEN_LENGTH = 16


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def check_token(token: str) -> str:
    """A token read from a file or the environment, stripped; ValueError when it is too short."""
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the access token has {len(token)} characters; at least {MIN_TOKEN_LENGTH} are needed")
    return token


def cookie_name(scope: Scope) -> str:
    # cookies are per host, not per port: two servers on one machine must not share one
    server = scope.get("server") or (None, None)
    return f"figsearch-token-{server[1] or 'default'}"


class TokenAuth:
    """Refuses every request without the token (401, the JSON error shape), but for PUBLIC_PATHS."""

    def __init__(self, app: ASGIApp, digest: bytes) -> None:
        self.app = app
        self.digest = digest

    def _valid(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token_digest(token), self.digest)

    def _presented(self, scope: Scope) -> str | None:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        return cookies.get(cookie_name(scope))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        offered = [v for k, v in query if k == "token"]
        if path == "/" and offered:
            # the URL printed at start: trade the token for a cookie and drop it from the address bar
            if self._valid(offered[-1]):
                await self._redirect_with_cookie(scope, send, offered[-1], [(k, v) for k, v in query if k != "token"])
            else:
                await self._refuse(send, "the token in the URL is not this server's; open the page without it to enter the token")
            return
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or self._valid(self._presented(scope)):
            await self.app(scope, receive, send)
            return
        await self._refuse(send, "this server needs its access token: send 'Authorization: Bearer <token>' "
                                 "or open the URL with ?token= that the server printed at start")

    async def _redirect_with_cookie(self, scope: Scope, send: Send, token: str, rest: list[tuple[str, str]]) -> None:
        location = scope.get("root_path", "").rstrip("/") + "/" + (f"?{urlencode(rest)}" if rest else "")
        cookie = f"{cookie_name(scope)}={token}; Path=/; HttpOnly; SameSite=Strict"
        await send({
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"cache-control", b"no-store"),
                (b"content-length", b"0"),
                (b"referrer-policy", b"no-referrer"),
            ],
        })
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _refuse(send: Send, message: str) -> None:
        payload = json.dumps(error_body(401, "unauthorized", message)).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", b'Bearer realm="figsearch"'),
            ],
        })
        await send({"type": "http.response.body", "body": payload})


_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&;])token=)[^&;\s\"]*", re.IGNORECASE)


def hide_token(text: str) -> str:
    return _TOKEN_IN_QUERY.sub(r"\1[hidden]", text)


class HideTokenFilter(logging.Filter):
    """Blanks ``token=...`` in a log record's message and arguments (uvicorn's access log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = hide_token(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(hide_token(a) if isinstance(a, str) else a for a in record.args)
        return True


def hide_tokens_in_logs(*names: str) -> None:
    """Installs HideTokenFilter on the named loggers (once each)."""
    for name in names or ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideTokenFilter) for f in logger.filters):
            logger.addFilter(HideTokenFilter())
