"""/api/health never waits: the database is read by a thread of the server's own, and the route
reads its last finding; the event loop gets the GIL back quickly while the app runs.

No timing is asserted: which thread read the database, and what health answers for a finding,
are exact."""

from __future__ import annotations

import sys
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from server_fake import FakeBackend, assert_error, build_collection, make_client  # noqa: E402

from figsearch.errors import CollectionError  # noqa: E402
from figsearch.server import state as state_module  # noqa: E402
from figsearch.server.state import HEALTH_STALE_S, SWITCH_INTERVAL_S, HealthWatch  # noqa: E402
from figsearch.store import Collection  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server-health") / "collection", sheets_per_patent=1)


@pytest.fixture
def pings(monkeypatch):
    """The names of the threads that read the database for health."""
    names: list[str] = []
    ping = Collection.ping

    def spy(self, busy_timeout_ms):
        names.append(threading.current_thread().name)
        return ping(self, busy_timeout_ms)

    monkeypatch.setattr(Collection, "ping", spy)
    return names


def test_health_reads_no_database_on_the_event_loop(root, pings):
    client, _ = make_client(root, FakeBackend(root))
    with client:
        for _ in range(20):
            assert client.get("/api/health").json()["status"] == "ok"
        watch = client.app.state.figsearch.health_watch
        assert watch.running
    assert pings and set(pings) == {"figsearch-health"}
    assert not watch.running  # stopped with the app


def test_health_answers_503_when_the_database_did_not_answer(root, monkeypatch):
    client, _ = make_client(root, FakeBackend(root))
    with client:
        watch = client.app.state.figsearch.health_watch

        def fails(self, busy_timeout_ms):
            raise CollectionError("the collection's database does not answer: database is locked")

        monkeypatch.setattr(Collection, "ping", fails)
        watch.check()
        response = client.get("/api/health")
        assert_error(response, 503, "busy")
        assert "database is locked" in response.json()["error"]["message"] and response.headers["retry-after"]
        monkeypatch.undo()
        watch.check()
        assert client.get("/api/health").status_code == 200


def test_an_old_finding_is_no_finding(root, monkeypatch):
    watch = HealthWatch(root)
    assert watch.problem() is not None  # not read yet
    watch.check()
    assert watch.problem() is None
    now = state_module.time.monotonic()
    monkeypatch.setattr(state_module.time, "monotonic", lambda: now + HEALTH_STALE_S + 1)
    assert "has not been read for" in watch.problem()
    watch.stop()  # closes the connection it opened inline


def test_without_the_lifespan_health_reads_the_database_itself(root, pings):
    client, _ = make_client(root, FakeBackend(root))
    assert client.get("/api/health").status_code == 200  # no `with`: no lifespan, no health thread
    assert len(pings) == 1 and pings[0] != "figsearch-health"  # read once, by the request itself
    assert not client.app.state.figsearch.health_watch.running
    client.app.state.figsearch.close()


def test_the_switch_interval_is_short_while_the_app_runs_and_restored_after(root):
    before = sys.getswitchinterval()
    client, _ = make_client(root, FakeBackend(root))
    with client:
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL_S))
    assert sys.getswitchinterval() == pytest.approx(before)


class Warmed(FakeBackend):
    def __init__(self, root) -> None:
        super().__init__(root)
        self.warm_threads: list[str] = []

    def warm(self):
        import asyncio

        try:
            asyncio.get_running_loop()
            on_a_loop = True
        except RuntimeError:
            on_a_loop = False
        self.warm_threads.append((threading.current_thread().name, on_a_loop))


def test_the_models_are_loaded_at_start_in_a_thread_and_the_heap_frozen(root):
    import gc

    backend = Warmed(root)
    client, _ = make_client(root, backend)
    frozen_before = gc.get_freeze_count()
    with client:
        assert client.app.state.figsearch.warmed.wait(20)
        assert len(backend.warm_threads) == 1  # once, at start
        assert backend.warm_threads[0] == ("figsearch-warm", False)  # in a thread, not on the event loop
        assert gc.get_freeze_count() > frozen_before  # the objects alive then are not walked again
        assert client.get("/api/health").status_code == 200
    assert gc.get_freeze_count() == frozen_before  # given back to the collector when the app stops


def test_the_server_answers_while_its_models_load(root):
    class SlowWarm(FakeBackend):
        release = threading.Event()

        def warm(self):
            if not self.release.wait(20):
                raise RuntimeError("the test never let the models load")

    backend = SlowWarm(root)
    client, _ = make_client(root, backend)
    with client:
        state = client.app.state.figsearch
        assert not state.warmed.is_set()
        assert client.get("/").status_code == 200 and client.get("/api/health").status_code == 200
        assert client.get("/api/search", params={"text": "rim"}).status_code == 200
        backend.release.set()
        assert state.warmed.wait(20)


def test_the_first_finding_is_there_when_start_returns(root, pings):
    # a probe right after start must not find "not read yet": start waits for the thread's first
    # reading (which still happens on the health thread, not the caller's)
    watch = HealthWatch(root, interval=60)
    try:
        watch.start()
        assert watch.problem() is None
        assert pings == ["figsearch-health"]
    finally:
        watch.stop()


def _route_only_app(root):
    """The same app's routes without its outer layers: what the health route itself answers."""
    from fastapi import FastAPI

    from figsearch.server.errors import install_error_handlers
    from figsearch.server.routes import router

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


def test_health_is_answered_before_every_other_layer_as_the_route_answers(root, monkeypatch):
    """FastHealth answers GET /api/health outside the balance, the token check and FastAPI: the
    same status, body and error shape as the route (which stays for the OpenAPI schema)."""
    from fastapi.testclient import TestClient

    client, _ = make_client(root, FakeBackend(root), token_digest=b"x" * 32, allowed_hosts=["testserver"])
    bare = _route_only_app(root)
    with client:
        state = client.app.state.figsearch
        bare.state.figsearch = state
        plain = TestClient(bare, raise_server_exceptions=False)
        fast = client.get("/api/health")  # no token: health is public
        slow = plain.get("/api/health")
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content and fast.json() == {"status": "ok", "collection": root.name}
        assert fast.headers["content-type"] == slow.headers["content-type"]
        # the header only FastHealth sets: the route's layers did not answer
        assert "server-timing" not in slow.headers
        timing = dict(part.strip().split(";dur=") for part in fast.headers["server-timing"].split(","))
        assert set(timing) == {"lag", "lag-busy", "lag-runq"} and all(float(v) >= 0.0 for v in timing.values())
        # a foreign Host goes on to the host check, which refuses it
        assert_error(client.get("/api/health", headers={"host": "evil.example"}), 400, "bad_host")

        def fails(self, busy_timeout_ms):
            raise CollectionError(f"the collection's database at {root} does not answer: database is locked")

        monkeypatch.setattr(Collection, "ping", fails)
        state.health_watch.check()
        fast, slow = client.get("/api/health"), plain.get("/api/health")
        assert_error(fast, 503, "busy")
        assert fast.content == slow.content and str(root) not in fast.text
        assert fast.headers["retry-after"] == slow.headers["retry-after"]
        monkeypatch.undo()
        state.health_watch.check()


def test_the_loop_lag_is_the_largest_of_the_last_two_windows():
    from figsearch.server.state import LoopLag

    lag = LoopLag(interval=0.02, window=1.0)
    lag.record(0.005, 0.1)
    lag.record(0.030, 0.5, busy=0.010, runq=0.015)
    lag.record(0.010, 0.6)
    assert lag.recent() == pytest.approx((30.0, 10.0, 15.0))  # the worst lag, with its own split
    lag.record(0.001, 1.2)  # a new window: the previous one's 30 ms still counts
    assert lag.recent_ms() == pytest.approx(30.0)
    lag.record(0.002, 2.3)  # two windows on: forgotten
    assert lag.recent_ms() == pytest.approx(2.0)
    lag.record(0.0, 5.0)  # after a gap of more than a window, the old one does not count
    assert lag.recent_ms() == pytest.approx(0.0)


def test_the_loop_lag_task_runs_on_the_loop_and_splits_the_lag():
    """On Linux the run-queue wait comes from the kernel; a blocking call on the loop shows as busy."""
    import asyncio
    import time

    from figsearch.server.state import LoopLag

    async def main():
        lag = LoopLag(interval=0.01, window=5.0)
        lag.start()
        await asyncio.sleep(0.05)
        end = time.thread_time() + 0.06
        while time.thread_time() < end:  # 60 ms of the loop's own CPU: a callback that blocks it
            pass
        await asyncio.sleep(0.03)
        lag.stop()
        return lag.recent()

    worst, busy, runq = asyncio.run(main())
    assert worst >= 50.0 and busy >= 50.0 and runq >= 0.0


def test_the_event_loop_thread_runs_less_nice_while_the_app_runs_where_allowed(root):
    """The lifespan (on the loop's thread) raises that thread's priority when the system allows it and
    restores it after; the pools' threads, started before, keep the process's niceness plus their own."""
    import os
    import threading

    from figsearch.server.state import LOOP_PRIORITY_BOOST, raise_thread_priority, restore_thread_priority

    before = raise_thread_priority(1)
    if before is None:
        pytest.skip("this process may not lower a thread's niceness (needs root or CAP_SYS_NICE)")
    restore_thread_priority(before)
    niceness = lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # noqa: E731
    base = niceness()
    client, _ = make_client(root, FakeBackend(root))
    with client:
        on_the_loop = client.portal.call(niceness)  # the lifespan ran on the portal's loop thread
    assert on_the_loop == max(-20, base - LOOP_PRIORITY_BOOST)
