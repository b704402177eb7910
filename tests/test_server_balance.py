"""Workers share their clients: a worker holding more active connections than its share of all
the workers' closes that many after their response (``Connection: close``), so the clients come
back on new connections that the other workers can accept. The counts and the closing decision
are exact; no timing is asserted."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
httpx = pytest.importorskip("httpx")

from server_fake import FakeBackend, build_collection  # noqa: E402

from figsearch.server.app import create_app  # noqa: E402
from figsearch.server.balance import ConnectionBalance, supervised  # noqa: E402


def _worker(directory, name, connections) -> ConnectionBalance:
    balance = ConnectionBalance(directory, name=name, window_s=60)
    for port in range(connections):
        connection = ("127.0.0.1", 40000 + port)
        balance.seen(connection)
        balance.done(connection)
    balance._count(time.monotonic())
    return balance


def test_a_worker_over_its_share_closes_the_difference_and_no_more(tmp_path):
    busy, idle = _worker(tmp_path, "busy", 14), _worker(tmp_path, "idle", 6)
    for worker in (busy, idle, busy):
        worker.publish()
    assert (busy.mine, idle.mine, busy.workers) == (14, 6, 2)
    assert (busy.excess, idle.excess) == (4, 0)
    closes = []
    for port in range(14):
        connection = ("127.0.0.1", 40000 + port)
        busy.seen(connection)
        closes.append(busy.done(connection))
    assert closes == [True] * 4 + [False] * 10
    assert (busy.mine, busy.closed) == (10, 4)
    idle.publish()
    assert idle.excess == 0


def test_a_worker_alone_closes_nothing(tmp_path):
    alone = _worker(tmp_path, "alone", 30)
    alone.publish()
    assert (alone.workers, alone.excess) == (1, 0)
    assert not any(alone.done(("127.0.0.1", 40000 + port)) for port in range(30))


def test_a_stopped_sibling_does_not_count(tmp_path):
    busy = _worker(tmp_path, "busy", 10)
    gone = tmp_path / "gone"
    gone.write_text("0")
    old = time.time() - 60
    os.utime(gone, (old, old))
    busy.publish()
    assert (busy.workers, busy.excess) == (1, 0)


def test_a_connection_with_a_request_in_flight_is_active_and_not_closed(tmp_path):
    balance = ConnectionBalance(tmp_path, name="w", window_s=0.0)
    connection = ("127.0.0.1", 40001)
    balance.seen(connection)
    balance.seen(connection)  # a second request on it before the first answered
    balance._count(time.monotonic() + 10)
    assert balance.mine == 1  # long idle by the clock, but in flight
    balance.excess = 1
    assert balance.done(connection) is False  # the other request is still to be answered on it
    assert balance.done(connection) is True


def test_the_stop_removes_the_workers_file_and_the_last_one_the_folder(tmp_path):
    folder = tmp_path / "peers"
    first, second = _worker(folder, "a", 1), _worker(folder, "b", 1)
    first.publish()
    second.publish()
    first.stop()
    assert sorted(p.name for p in folder.iterdir()) == ["b"]
    second.stop()
    assert not folder.exists()


def test_apps_outside_a_supervisor_do_not_balance(tmp_path):
    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    assert not supervised()
    assert create_app(FakeBackend(root), root).state.figsearch.balance is None


def test_the_app_closes_the_connections_over_its_share(tmp_path):
    """Four client connections on this worker, a sibling with none: two of the next four answers
    close their connection, the other two keep theirs."""
    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    peers = tmp_path / "peers"
    app = create_app(FakeBackend(root), root, balance=True, balance_dir=peers)
    balance = app.state.figsearch.balance
    balance.window_s = 60
    balance.interval_s = 3600  # its thread then never publishes: this test does

    async def requests() -> list[str | None]:
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 41000 + i)),
                                     base_url="http://127.0.0.1:8000") for i in range(4)]
        try:
            for client in clients:
                assert (await client.get("/")).status_code == 200
            peers.mkdir(exist_ok=True)
            (peers / "sibling").write_text("0")
            balance._count(time.monotonic())
            balance.publish()
            assert (balance.mine, balance.workers, balance.excess) == (4, 2, 2)
            # a health probe is answered before the balance: never closed, never counted
            for client in clients:
                answer = await client.get("/api/health")
                assert answer.status_code == 200 and "connection" not in answer.headers
            assert balance.excess == 2
            return [(await client.get("/")).headers.get("connection") for client in clients]
        finally:
            for client in clients:
                await client.aclose()

    try:
        headers = asyncio.run(requests())
    finally:
        balance.stop()
    assert headers == ["close", "close", None, None]
    assert balance.closed == 2
