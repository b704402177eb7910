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


def test_a_worker_publishes_its_count_from_its_start_before_any_request(tmp_path):
    """A worker no client reached yet must still count for its siblings: else a sibling holding every
    connection sees no sibling and closes none (the idle run where one worker kept all 20 clients)."""
    from fastapi.testclient import TestClient

    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    peers = tmp_path / "peers"
    app = create_app(FakeBackend(root), root, balance=True, balance_dir=peers)
    balance = app.state.figsearch.balance
    busy = _worker(peers, "busy", 20)
    with TestClient(app):
        # the lifespan has run, no request has: this worker's 0 is there for the busy sibling
        assert (peers / balance.name).read_text() == "0"
        busy.publish()
        assert (busy.workers, busy.excess) == (2, 10)
    assert not (peers / balance.name).exists()  # the stop removes it
    busy.stop()


def _served_workers(process) -> list[int]:
    from pathlib import Path

    children = []
    for task in Path(f"/proc/{process.pid}/task").glob("*/children"):
        children += [int(c) for c in task.read_text().split()]
    workers = []
    for child in children:
        try:
            if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            pass
    return workers


def _sockets_of(pids: list[int], port: int, state: str) -> list[set[str]]:
    """The sockets on local ``port`` in TCP ``state`` ("01" established, "0A" listening) that each of
    ``pids`` holds: socket inodes of the kernel's TCP tables found among the process's fds."""
    from pathlib import Path

    wanted = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                wanted.add(fields[9])
    held = []
    for pid in pids:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        held.append(inodes & wanted)
    return held


def _connections_of(pids: list[int], port: int) -> list[int]:
    """Established connections to ``port`` held by each of ``pids``."""
    return [len(inodes) for inodes in _sockets_of(pids, port, "01")]


def _listeners_of(pids: list[int], port: int) -> list[set[str]]:
    """The listening sockets on ``port`` each of ``pids`` holds (socket inodes)."""
    return _sockets_of(pids, port, "0A")


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads which worker holds a connection from Linux's /proc")
def test_two_workers_both_serve_a_burst_of_kept_alive_clients(tmp_path):
    """``figsearch serve --workers 2`` for real: 20 clients connect at once and keep their connections;
    whichever worker the kernel gave them to, the balance moves some to the other, and both serve."""
    import http.client
    import re
    import subprocess
    import sys

    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    process = subprocess.Popen([sys.executable, "-m", "figsearch", "serve", "--collection", str(root), "--port", "0",
                                "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    connections: list = []
    try:
        port = None
        for line in process.stdout:  # the port is printed before the workers start
            match = re.search(r"127\.0\.0\.1:(\d+)/", line)
            if match:
                port = int(match.group(1))
            if "Ctrl+C" in line:
                break
        assert port, "the server printed no address"
        deadline = time.monotonic() + 120
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = _served_workers(process)
            time.sleep(0.2)
        assert len(workers) == 2
        # each worker listens on a socket of its own (SO_REUSEPORT): the kernel spreads the connections
        own = _listeners_of(workers, port)
        assert all(len(inodes) == 1 for inodes in own) and own[0] != own[1], own
        # both workers answer before the burst (each app has started, so each publishes its count)
        answered = False
        while not answered and time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                probe.request("GET", "/api/health")
                answered = probe.getresponse().status == 200
                probe.close()
            except OSError:
                time.sleep(0.2)
        time.sleep(2.0)  # both lifespans done: every worker's count is published
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(20)]
        for connection in connections:
            connection.connect()  # all at once: the kernel may hand every one of them to one worker
        closed = 0
        counts = [0, 0]
        for _ in range(400):  # rounds of one request per client, every client active
            for connection in connections:
                if connection.sock is None:
                    connection.connect()
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                if (response.getheader("connection") or "").lower() == "close":
                    closed += 1
                    connection.close()
            counts = _connections_of(workers, port)
            if min(counts) >= 5 or time.monotonic() > deadline:
                break
        assert min(counts) >= 5, f"connections per worker {counts} ({closed} closed to balance)"
    finally:
        for connection in connections:
            connection.close()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
