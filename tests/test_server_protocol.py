"""figsearch serve's HTTP protocol answers GET /api/health in the connection's read callback, with no
task queued behind other requests (figsearch.server.protocol), and with the answer FastHealth gives.

Driven by hand over a fake transport: what was written, and whether a task was started, are exact."""

from __future__ import annotations

import asyncio
import re

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httptools")
uvicorn = pytest.importorskip("uvicorn")

from server_fake import FakeBackend, build_collection  # noqa: E402

from figsearch.server.app import LOOPBACK_HOSTS, create_app  # noqa: E402
from figsearch.server.protocol import HealthFirstProtocol, health_answer_of, http_protocol  # noqa: E402

PROBE = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server-protocol") / "collection", sheets_per_patent=1)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data) -> None:
        self.written += data

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(app, protocol_class):
    from uvicorn.server import ServerState

    loop = asyncio.new_event_loop()
    config = uvicorn.Config(app, http=protocol_class, log_level="warning")
    config.load()
    server_state = ServerState()
    protocol = protocol_class(config=config, server_state=server_state, app_state={}, _loop=loop)
    transport = Transport()
    protocol.connection_made(transport)
    return loop, protocol, transport, server_state


def answers(written: bytes) -> list[bytes]:
    """The answers in ``written``, with the header values that change from one answer to the next blanked."""
    parts = [b"HTTP/1.1" + part for part in written.split(b"HTTP/1.1")[1:]]
    return [re.sub(rb"(date|server-timing): [^\r]*", rb"\1: -", part) for part in parts]


def test_a_probe_is_answered_in_the_read_callback_without_a_task(root):
    app = create_app(FakeBackend(root), root)
    loop, protocol, transport, server_state = connect(app, HealthFirstProtocol)
    try:
        protocol.data_received(PROBE)
        protocol.data_received(PROBE)  # the same kept-alive connection, again
        assert not server_state.tasks  # answered before the loop ran anything: no task was started
        got = answers(bytes(transport.written))
        assert len(got) == 2 and not transport.closed
        for answer in got:
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"server-timing: -" in answer
            assert answer.endswith(b'{"status":"ok","collection":"%s"}' % root.name.encode())
        assert server_state.total_requests == 2
    finally:
        loop.close()


def test_the_answer_is_the_one_the_task_path_gives(root):
    app = create_app(FakeBackend(root), root)
    written = {}
    for protocol_class in (HealthFirstProtocol, uvicorn.protocols.http.httptools_impl.HttpToolsProtocol):
        loop, protocol, transport, server_state = connect(app, protocol_class)
        try:
            protocol.data_received(PROBE)
            if server_state.tasks:  # uvicorn's own protocol: the probe's task runs on the loop
                loop.run_until_complete(asyncio.gather(*server_state.tasks))
            written[protocol_class] = answers(bytes(transport.written))
        finally:
            loop.close()
    fast, usual = written.values()
    assert fast == usual and len(fast) == 1


def test_other_requests_and_foreign_hosts_take_the_task_path(root):
    app = create_app(FakeBackend(root), root, allowed_hosts=LOOPBACK_HOSTS)
    for request in (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                    b"GET /api/health HTTP/1.1\r\nHost: rebound.example\r\n\r\n",
                    b"POST /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"):
        loop, protocol, transport, server_state = connect(app, HealthFirstProtocol)
        try:
            protocol.data_received(request)
            assert len(server_state.tasks) == 1 and not transport.written, request
            for task in server_state.tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*server_state.tasks, return_exceptions=True))
        finally:
            loop.close()


def test_serve_runs_uvicorn_with_it_and_it_finds_the_app_inside_uvicorns_wrappers(root):
    assert http_protocol() is HealthFirstProtocol
    app = create_app(FakeBackend(root), root)
    config = uvicorn.Config(app, proxy_headers=True)
    config.load()
    assert config.loaded_app is not app  # wrapped by uvicorn
    assert health_answer_of(config.loaded_app) is app.state.figsearch.health_answer is not None
    assert health_answer_of(object()) is None
