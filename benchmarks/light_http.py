"""A light HTTP/1.1 client for the load test: one kept-alive connection per simulated user, requests
written and answers parsed by hand on asyncio streams, in the load test's one process.

Why not httpx: the load generator shares the machine's cores with the server it measures. httpx
spent about 4 ms of CPU per request in the load test (its own figures, a loaded 2-core machine),
which at 40-80 requests/s takes a tenth of a core or more from the server. This client does what
the load test needs and nothing more (GET with a query string, POST of a multipart form, bodies by
Content-Length or chunked, keep-alive, ``Connection: close``), for a fraction of that.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from urllib.parse import urlencode, urlparse


class Response:
    __slots__ = ("status_code", "headers", "body")

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Connection:
    """One HTTP/1.1 connection to ``base`` (``http://host:port/``), opened on first use and again
    after the server closes it. ``headers``: sent with every request (e.g. Authorization)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None, timeout: float = 120.0) -> None:
        parsed = urlparse(base)
        if parsed.scheme != "http":
            raise ValueError(f"only http:// is supported, not {base!r}")
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout = timeout
        host = f"[{self.host}]" if ":" in self.host else self.host
        fixed = f"Host: {host}:{self.port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._fixed = fixed.encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = False  # whether the open connection has carried a request already

    async def get(self, path: str, params: dict[str, str] | None = None) -> Response:
        target = path + ("?" + urlencode(params) if params else "")
        return await self.request("GET", target)

    async def post_form(self, path: str, fields: dict[str, str], file_field: str, filename: str, data: bytes,
                        content_type: str = "application/octet-stream") -> Response:
        """A multipart/form-data POST of ``fields`` and one file (the file's bytes are not copied)."""
        boundary = secrets.token_hex(16)
        head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                       for k, v in fields.items())
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n")
        tail = f"\r\n--{boundary}--\r\n".encode()
        return await self.request("POST", path, [head.encode(), data, tail],
                                  f"multipart/form-data; boundary={boundary}")

    async def request(self, method: str, target: str, body: list[bytes] = (), content_type: str | None = None) -> Response:
        length = sum(len(part) for part in body)
        head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if content_type:
            head += f"Content-Type: {content_type}\r\n".encode("latin-1")
        if body or method == "POST":
            head += f"Content-Length: {length}\r\n".encode()
        head += b"\r\n"
        for attempt in range(2):
            if self._writer is None:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout)
                self._used = False
            reused = self._used
            self._used = True
            try:
                return await asyncio.wait_for(self._exchange(head, body), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.close()
                # a kept-alive connection the server closed while idle: once more on a new one
                if attempt or not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(self, head: bytes, body) -> Response:
        writer, reader = self._writer, self._reader
        writer.write(head)
        for part in body:
            writer.write(part)
        await writer.drain()
        block = await reader.readuntil(b"\r\n\r\n")
        lines = block.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            payload = b"".join(chunks)
        else:
            payload = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, payload)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
