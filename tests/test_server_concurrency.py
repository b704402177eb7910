"""Backend calls run in parallel in bounded pools: past the bound the server answers 503 with
Retry-After at once, and health, lookups and static files answer while searches saturate it.

(This replaces test_server_api's test that calls went through a gate one at a time.) No timing
is asserted: a blocked fake backend makes "saturated" exact, and every wait is bounded.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from server_fake import FakeBackend, assert_error, build_collection, make_client  # noqa: E402

from figsearch.server.state import BoundedPool, default_threads, machine_cores  # noqa: E402

WAIT_S = 20  # a bound on every wait here, far above what any of it takes


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("server-concurrency") / "collection", sheets_per_patent=1)


class Blocking(FakeBackend):
    """Searches block until ``release`` is set; ``started`` counts the searches running.
    ``only``: "images" blocks only searches with an image, "words" only those without."""

    def __init__(self, root, only: str | None = None) -> None:
        super().__init__(root)
        self.only = only
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started = threading.Semaphore(0)

    def search(self, query):
        if self.only and (query.image is not None) != (self.only == "images"):
            return super().search(query)
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.release()
        try:
            if not self.release.wait(WAIT_S):
                raise RuntimeError("the test never released the backend")
            return super().search(query)
        finally:
            with self.lock:
                self.running -= 1


def _wait_started(backend: Blocking, n: int) -> None:
    for _ in range(n):
        assert backend.started.acquire(timeout=WAIT_S), "a search never reached the backend"


def _wait_admitted(pool: BoundedPool, n: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while pool.admitted < n:
        assert time.monotonic() < deadline, f"only {pool.admitted} of {n} searches reached the pool"
        time.sleep(0.01)


def test_searches_run_in_parallel_up_to_the_threads(root):
    parties = 3
    barrier = threading.Barrier(parties, timeout=WAIT_S)

    class Meeting(FakeBackend):
        # each search waits for two others: with fewer than 3 threads the barrier breaks
        def search(self, query):
            barrier.wait()
            return super().search(query)

    client, _ = make_client(root, Meeting(root), threads=parties, queue=10)
    with client, ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: client.get("/api/search", params={"text": "rim"}).status_code, range(6)))
    assert statuses == [200] * 6


def test_a_full_queue_answers_503_with_retry_after_at_once(root):
    backend = Blocking(root)
    client, _ = make_client(root, backend, threads=2, queue=1)
    with client, ThreadPoolExecutor(3) as pool:
        admitted = [pool.submit(client.get, "/api/search", params={"text": "rim"}) for _ in range(3)]
        _wait_started(backend, 2)  # two run, one waits in the queue: the pool is full
        # the third may still be on its way to the queue: a refusal sent before it arrives would take its
        # place and block (a 500 when the backend gives up), so wait until the pool holds all three
        _wait_admitted(client.app.state.figsearch.searches, 3)
        for _ in range(3):
            refused = client.get("/api/search", params={"text": "rim"})
            error = assert_error(refused, 503, "busy")
            assert int(refused.headers["retry-after"]) >= 1
            assert "busy" in error["message"]
        backend.release.set()
        assert [f.result(timeout=WAIT_S).status_code for f in admitted] == [200] * 3
    assert backend.peak == 2
    # once drained, the pool takes searches again
    with client:
        assert client.get("/api/search", params={"text": "rim"}).status_code == 200


def _upload(client, **fields):
    png = client.get("/api/figures/EP1000003A1-D00001/image").content
    return client.post("/api/search", files={"image": ("q.png", png, "image/png")}, data={"mode": "visual", **fields})


def test_uploads_and_searches_by_figure_or_words_do_not_wait_for_each_other(root):
    # uploads saturate their pool: searches by words or figure still answer, and vice versa
    backend = Blocking(root, only="images")
    client, _ = make_client(root, backend, threads=1, queue=0)
    with client, ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(_upload, client)
        _wait_started(backend, 1)
        assert_error(_upload(client), 503, "busy")
        # a crop of a collection figure is an image to encode too, and so is an upload's preview
        assert_error(client.get("/api/search", params={"figure_id": "EP1000003A1-D00001", "crop": "0,0,0.5,0.5"}),
                     503, "busy")
        png = client.get("/api/figures/EP1000003A1-D00001/image").content
        assert_error(client.post("/api/preview", files={"image": ("q.png", png, "image/png")}), 503, "busy")
        assert client.get("/api/search", params={"figure_id": "EP1000003A1-D00001"}).status_code == 200
        assert client.get("/api/search", params={"text": "rim"}).status_code == 200
        backend.release.set()
        assert stuck.result(timeout=WAIT_S).status_code == 200

    backend = Blocking(root, only="words")
    client, _ = make_client(root, backend, threads=1, queue=0)
    with client, ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(client.get, "/api/search", params={"text": "rim"})
        _wait_started(backend, 1)
        assert_error(client.get("/api/search", params={"figure_id": "EP1000003A1-D00001"}), 503, "busy")
        assert _upload(client).status_code == 200
        backend.release.set()
        assert stuck.result(timeout=WAIT_S).status_code == 200


def test_health_lookups_and_static_files_answer_while_searches_saturate_the_pool(root):
    backend = Blocking(root)
    client, _ = make_client(root, backend, threads=1, queue=0)
    with client, ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(client.get, "/api/search", params={"text": "rim"})
        _wait_started(backend, 1)
        assert_error(client.get("/api/search", params={"text": "rim"}), 503, "busy")
        for _ in range(5):
            assert client.get("/api/health").json()["status"] == "ok"
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/figures/EP1000003A1-D00001").status_code == 200
        assert client.get("/api/figures/EP1000003A1-D00001/thumbnail").status_code == 200
        assert client.get("/api/patents/EP1000003A1").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
        backend.release.set()
        assert stuck.result(timeout=WAIT_S).status_code == 200


def test_a_failing_call_frees_its_slot(root):
    backend = FakeBackend(root)
    backend.fail_with = RuntimeError("boom")
    client, _ = make_client(root, backend, threads=1, queue=0)
    with client:
        for _ in range(4):  # with a leaked slot the second would be a 503
            assert_error(client.get("/api/search", params={"text": "rim"}), 500, "internal_error")
        assert client.app.state.figsearch.searches.admitted == 0


def test_pool_bounds_are_checked():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        BoundedPool("x", 0, 1)
    assert machine_cores() >= 1 and default_threads() == machine_cores() and default_threads(workers=64) == 1
    # the cores shared out: as many threads per pool in all the workers together as there are cores
    assert default_threads(workers=machine_cores()) == 1


def test_bad_uploads_are_refused_at_once_even_when_the_upload_queue_is_full(root):
    backend = Blocking(root, only="images")
    client, _ = make_client(root, backend, threads=1, queue=0)
    limit = client.app.state.figsearch.limits.max_upload_bytes
    with client, ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(_upload, client)
        _wait_started(backend, 1)
        # what needs no decoding to refuse is refused on the spot, not queued (nor answered 503)
        not_an_image = client.post("/api/search", files={"image": ("a.png", b"%!PS-Adobe-3.0\n" * 10, "image/png")})
        assert_error(not_an_image, 415, "unsupported_format")
        oversized = b"\x89PNG\r\n\x1a\n" + bytes(limit + 100)
        assert_error(client.post("/api/search", files={"image": ("big.png", oversized, "image/png")}), 413, "too_large")
        assert_error(client.post("/api/preview", files={"image": ("a.gif", b"GIF89a" + bytes(50), "image/gif")}),
                     415, "unsupported_format")
        backend.release.set()
        assert stuck.result(timeout=WAIT_S).status_code == 200


@pytest.mark.skipif(not hasattr(__import__("os"), "setpriority"), reason="thread priorities need os.setpriority")
def test_upload_threads_run_at_a_lower_priority():
    import asyncio
    import os

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def both():
        plain, nicer = BoundedPool("plain", 1, 0), BoundedPool("nicer", 1, 0, niceness=3)
        try:
            return await plain.run(niceness), await nicer.run(niceness)
        finally:
            plain.shutdown()
            nicer.shutdown()

    plain, nicer = asyncio.run(both())
    assert nicer == min(19, plain + 3)


@pytest.mark.skipif(not hasattr(__import__("os"), "setpriority"), reason="thread priorities need os.setpriority")
def test_every_backend_call_runs_nicer_than_the_event_loop_and_uploads_nicest(tmp_path):
    import os

    from figsearch.server.state import SEARCH_NICENESS, UPLOAD_NICENESS

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop = niceness()
    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    client, _ = make_client(root, FakeBackend(root))
    with client:
        state = client.app.state.figsearch
        found = {pool.name: client.portal.call(pool.run, niceness) for pool in state.pools}
    assert found == {"uploads": min(19, loop + UPLOAD_NICENESS), "searches": min(19, loop + SEARCH_NICENESS),
                     "lookups": min(19, loop + SEARCH_NICENESS)}
    assert 0 < SEARCH_NICENESS < UPLOAD_NICENESS


def test_the_pools_threads_are_all_started_with_the_app(tmp_path):
    """No call starts a thread on the event loop: every pool has all of its threads once the app runs."""
    root = build_collection(tmp_path / "collection", sheets_per_patent=1)
    client, _ = make_client(root, FakeBackend(root), threads=3)
    with client:
        state = client.app.state.figsearch
        started = {pool.name: len(pool._executor._threads) for pool in state.pools}
        assert started == {pool.name: pool.threads for pool in state.pools} == {"uploads": 3, "searches": 3, "lookups": 6}


def test_a_call_that_would_wait_too_long_is_refused_at_once():
    import asyncio

    from figsearch.server.errors import ServerBusy

    release = threading.Event()

    async def scenario():
        pool = BoundedPool("slow", 1, 10, max_wait_s=5.0)
        pool._mean_s = 4.0  # the recent calls took 4 s each
        try:
            first = asyncio.ensure_future(pool.run(release.wait, WAIT_S))  # runs at once
            await asyncio.sleep(0)
            second = asyncio.ensure_future(pool.run(release.wait, WAIT_S))  # waits about 4 s: admitted
            await asyncio.sleep(0)
            assert pool.admitted == 2 and pool.expected_wait_s() == 8.0
            with pytest.raises(ServerBusy) as refused:  # would wait about 8 s > 5 s, though the queue has room
                await pool.run(release.wait, WAIT_S)
            assert refused.value.retry_after == 3 and pool.admitted == 2
            release.set()
            assert await first and await second
        finally:
            release.set()
            pool.shutdown()

    asyncio.run(scenario())


def _server_timing(response) -> dict[str, float]:
    parts = {}
    for part in response.headers["server-timing"].split(","):
        name, _, duration = part.strip().partition(";dur=")
        parts[name] = float(duration)
    return parts


def test_a_search_answers_with_its_pool_call_timing(root):
    """Server-Timing says how long the call waited for a pool thread, ran, and computed on its
    thread: what load_test.py splits an upload's time by. A call queued behind a running one
    reports its wait (the first holds the only thread until the test releases it)."""
    backend = Blocking(root, only="images")
    client, _ = make_client(root, backend, threads=1, queue=2)
    with client, ThreadPoolExecutor(2) as pool:
        for params in ({"figure_id": "EP1000003A1-D00001"}, {"text": "rim"}):
            timing = _server_timing(client.get("/api/search", params=params))
            # runq (waiting for a core) where the kernel says it (Linux)
            expected = {"queue", "run", "cpu"} | ({"runq"} if os.path.exists("/proc/thread-self/schedstat") else set())
            assert set(timing) == expected and min(timing.values()) >= 0
        first = pool.submit(_upload, client)
        _wait_started(backend, 1)
        second = pool.submit(_upload, client)
        state = client.app.state.figsearch
        for _ in range(WAIT_S * 100):  # until the second upload waits in the queue
            if state.uploads.admitted == 2:
                break
            threading.Event().wait(0.01)
        assert state.uploads.admitted == 2
        threading.Event().wait(0.05)
        backend.release.set()
        answers = [first.result(timeout=WAIT_S), second.result(timeout=WAIT_S)]
        # a refused call never reached a thread: no timing to give
        refused = client.post("/api/search", files={"image": ("q.png", b"GIF89a", "image/png")})
        assert refused.status_code == 415 and "server-timing" not in refused.headers
    assert [a.status_code for a in answers] == [200, 200]
    queued = _server_timing(answers[1])
    assert queued["queue"] >= 50 * 0.9, queued  # it waited at least the 50 ms the first one was held after it came


def test_an_upload_says_in_server_timing_how_many_orientations_it_searched_with(root):
    """``turns;desc=N`` from the service's timings (1 when the upright-first rule spared the other turns):
    load_test.py counts with it how often the rule fired on each kind of upload."""

    class Turned(FakeBackend):
        def search(self, query):
            result = super().search(query)
            if query.image is not None:
                result.timings = {"turns": 1.0 if query.all_turns else 4.0}
            return result

    client, _ = make_client(root, Turned(root))
    with client:
        headers = [_upload(client, **fields).headers["server-timing"] for fields in ({}, {"all_turns": "true"})]
        by_figure = client.get("/api/search", params={"figure_id": "EP1000003A1-D00001"}).headers["server-timing"]
    assert [h.split(", ")[-1] for h in headers] == ["turns;desc=4", "turns;desc=1"]
    # and its phases on the thread: decoding the file, building the answer (the fake service gives no others)
    names = [part.split(";")[0] for part in headers[0].split(", ")]
    runq = ["runq"] if os.path.exists("/proc/thread-self/schedstat") else []  # waiting for a core, where the kernel says
    assert names == ["queue", "run", "cpu", *runq, "decode", "answer", "turns"]
    assert "turns" not in by_figure and "decode" not in by_figure
