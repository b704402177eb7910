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
