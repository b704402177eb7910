"""The build on Ray (figsearch.pipeline.distributed) gives the local build's collection.

A local Ray instance with 2 CPUs (``ray.init(num_cpus=2)``), small inputs: one EP document of
../shared/data with OCR and both encoders, and the reliability tests' synthetic inputs (US, EP, PDF,
a zip, a broken TIFF) without OCR and indexes. Skipped when Ray is not installed
(``pip install 'figsearch[ray]'``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from collection_check import compare, snapshot
from reliability_helpers import make_inputs

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'figsearch[ray]'")

import figsearch  # noqa: E402
from figsearch.pipeline.building import build  # noqa: E402
from figsearch.pipeline.distributed import (  # noqa: E402
    CRASHED, TEXT_COST, RayCluster, _by_cost, _pieces, build_on_ray, encoder_threads,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
EP_DOCUMENT = DATA / "ep-documents" / "EP1667425A1"
TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    markers = tmp_path_factory.mktemp("crash-markers")
    python_path = os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", runtime_env={
        "worker_process_setup_hook": "ray_crash_hook.setup",
        "env_vars": {"PYTHONPATH": python_path, "FIGSEARCH_TEST_CRASH_MARKERS": str(markers)},
    })
    try:
        yield markers
    finally:
        ray.shutdown()


def _ray_build(paths, collection, reads=None, encoded=None, texts=None, **options):
    with RayCluster("local", workers=2) as cluster:
        report = build(paths, collection, cluster=cluster, **options)
    if reads is not None:
        reads.update(cluster.reads)
    if encoded is not None:
        encoded.update(cluster.encoded)
    if texts is not None:
        texts.update(cluster.texts)
    return report


def _boxed_drawing_png(n: int) -> bytes:
    """A PNG drawing of a box, its size and place varying with ``n`` (the Ray worker's encoding tests)."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (500 + 40 * n, 700), 255)
    ImageDraw.Draw(image).rectangle((60 + 10 * n, 80, 300, 400 + 30 * n), outline=0, width=3)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _embeddings(root: Path) -> dict[tuple, np.ndarray]:
    with sqlite3.connect(f"file:{root / 'figsearch.sqlite'}?mode=ro", uri=True) as db:
        return {(f, m, e): np.frombuffer(v, dtype=np.float32)
                for f, m, e, v in db.execute("SELECT figure_id, modality, encoder, vector FROM embeddings")}


@pytest.mark.slow
@pytest.mark.skipif(not EP_DOCUMENT.is_dir(), reason="../shared/data/ep-documents is absent")
def test_a_ray_build_equals_the_local_build(cluster, tmp_path):
    local, distributed = tmp_path / "local", tmp_path / "ray"
    expected = build([EP_DOCUMENT], local)
    reads, encoded, texts = {}, {}, {}
    report = _ray_build([EP_DOCUMENT], distributed, reads=reads, encoded=encoded, texts=texts)
    # the workers read the drawings' signs right after decoding them: the same signs, read earlier
    assert reads["while ingesting"] > 0
    # and the driver parses, links and writes them as soon as their document is committed
    assert 0 < reads["linked while ingesting"] <= reads["while ingesting"]
    # and encode them then once their drawing encoder is loaded (the first document may come before);
    # the figures the driver cuts from sheets (while ingesting, or in the signs stage) are encoded
    # as soon as they are cut
    assert encoded["cut from sheets"] > 0
    assert encoded["while ingesting"] + encoded["cut from sheets"] + encoded["in the embedding stage"] > 10
    # the texts of the document the driver linked during the ingest were encoded before the embedding
    # stage asked for them (the same vectors within float tolerance: checked below)
    assert texts["before the embedding stage"] > 10
    assert report.ingest.as_dict() | {"seconds": 0} == expected.ingest.as_dict() | {"seconds": 0}
    assert report.signs is not None and report.signs.signs == expected.signs.signs > 0
    assert report.signs.links == expected.signs.links > 0
    # every count (figures, words, cut sheets...) and note, what the driver did while ingesting included
    assert report.signs == expected.signs
    # same patents, figures, signs, links, sources, failures and image bytes; vectors compared below
    reference, other = snapshot(local), snapshot(distributed)
    vectors_local, vectors_ray = _embeddings(local), _embeddings(distributed)
    for snap in (reference, other):
        snap.tables.pop("embeddings")
    difference = compare(reference, other)
    assert difference.equal, str(difference)
    assert vectors_local.keys() == vectors_ray.keys() and len(vectors_local) > 10
    for key, vector in vectors_local.items():
        np.testing.assert_allclose(vectors_ray[key], vector, atol=1e-5, err_msg=str(key))
    with figsearch.open(local) as a, figsearch.open(distributed) as b:
        queries = sorted({f for f, m, _ in vectors_local if m == "visual"})[:50]
        with_text = {f for f, m, _ in vectors_local if m == "text"}
        assert len(queries) >= 5 and with_text
        for query in queries:
            for mode in ("visual", "text", "avg") if query in with_text else ("visual",):
                hits_a = [h.figure_id for h in a.search(figure=query, mode=mode, k=10).hits]
                hits_b = [h.figure_id for h in b.search(figure=query, mode=mode, k=10).hits]
                assert hits_b == hits_a, (query, mode)


def test_failed_documents_are_recorded_as_in_a_local_build(cluster, tmp_path):
    inputs = make_inputs(tmp_path / "in", documents=2)  # US, EP, PDF, a zip and a broken TIFF
    local, distributed = tmp_path / "local", tmp_path / "ray"
    expected = build([inputs], local, skip_ocr=True, index=False)
    report = _ray_build([inputs], distributed, skip_ocr=True, index=False)
    assert [(f.source, f.reason) for f in report.ingest.failures] == \
           [(f.source, f.reason) for f in expected.ingest.failures]
    assert len(expected.ingest.failures) == 1 and "bad.tif" in expected.ingest.failures[0].source
    difference = compare(snapshot(local), snapshot(distributed))
    assert difference.equal, str(difference)
    # a rerun skips everything, as locally
    again = _ray_build([inputs], distributed, skip_ocr=True, index=False)
    assert again.ingest.documents == 0 and again.ingest.skipped_unchanged + again.ingest.skipped_archives >= 4


def test_a_killed_worker_is_retried_and_nothing_is_written_twice(cluster, tmp_path):
    inputs = make_inputs(tmp_path / "in", documents=2)
    (inputs / "us" / "doc1").rename(inputs / "us" / "crash-once-doc1")
    local, distributed = tmp_path / "local", tmp_path / "ray"
    expected = build([inputs], local, skip_ocr=True, index=False)
    report = _ray_build([inputs], distributed, skip_ocr=True, index=False)
    assert len(list(cluster.iterdir())) == 1  # the worker really died once on that document
    assert report.ingest.documents == expected.ingest.documents
    assert report.ingest.figures == expected.ingest.figures
    difference = compare(snapshot(local), snapshot(distributed))
    assert difference.equal, str(difference)


def test_a_document_that_kills_every_try_is_that_documents_failure(cluster, tmp_path):
    inputs = make_inputs(tmp_path / "in", documents=2)
    (inputs / "us" / "doc0").rename(inputs / "us" / "crash-always-doc0")
    report = _ray_build([inputs], tmp_path / "ray", skip_ocr=True, index=False)
    crashed = [f for f in report.ingest.failures if "crash-always" in f.source]
    assert len(crashed) == 1 and crashed[0].reason == CRASHED
    assert report.ingest.documents == build([inputs], tmp_path / "local", skip_ocr=True,
                                            index=False).ingest.documents - 1


def test_inputs_given_as_urls_are_read_through_fsspec(cluster, tmp_path):
    fsspec = pytest.importorskip("fsspec")
    inputs = make_inputs(tmp_path / "in", documents=1)
    memory = fsspec.filesystem("memory")
    for path in sorted(p for p in inputs.rglob("*") if p.is_file()):
        memory.pipe_file(f"/ray-inputs/{path.relative_to(inputs).as_posix()}", path.read_bytes())
    try:
        url = "memory://ray-inputs"
        expected = build([url], tmp_path / "local", skip_ocr=True, index=False)
        report = _ray_build([url], tmp_path / "ray", skip_ocr=True, index=False)
        by_file = build([inputs.as_uri()], tmp_path / "file-url", skip_ocr=True, index=False)
    finally:
        memory.rm("/ray-inputs", recursive=True)
    assert expected.ingest.documents == by_file.ingest.documents > 0
    difference = compare(snapshot(tmp_path / "local"), snapshot(tmp_path / "ray"))
    assert difference.equal, str(difference)
    with figsearch.open(tmp_path / "ray") as coll:
        figures = [f for n in ("EP1234567A1",) for f in coll.patent(n).figures]
    assert figures and all(f.source_file.startswith(f"{url}/ep/EP1234567A1/") for f in figures)
    assert all(f.source.startswith(url + "/") for f in report.ingest.failures)
    assert not any(p.name.startswith("remote-") for p in (tmp_path / "ray" / ".tmp").glob("*"))


def test_a_worker_that_cannot_load_the_encoder_is_one_clear_error(cluster, tmp_path):
    from figsearch.errors import FigsearchError

    with pytest.raises(FigsearchError, match="nowhere"):
        RayCluster("local", workers=2).encoder("text", f"sbert:{tmp_path / 'nowhere'}")


def test_a_worker_without_the_model_files_stops_the_build_before_anything_is_written(cluster, tmp_path):
    """The workers load the build's encoders from its start: one that cannot is the build's one error,
    raised before the first document is committed (not after ingest and signs)."""
    from figsearch.errors import ModelUnavailable
    from figsearch.store import Collection

    inputs = make_inputs(tmp_path / "in", documents=1)
    with pytest.raises(ModelUnavailable, match="nowhere"):
        _ray_build([inputs], tmp_path / "coll", skip_ocr=True, text_model=f"sbert:{tmp_path / 'nowhere'}")
    with Collection.open(tmp_path / "coll") as collection:
        assert collection.patent_numbers() == []
    # the same input with the encoders there builds (the workers of the failed build were let go)
    report = _ray_build([inputs], tmp_path / "coll", skip_ocr=True, visual_model="hog", text_model="none")
    assert report.ingest.documents > 0 and report.index is not None


def test_texts_are_cut_into_pieces_of_about_the_same_cost():
    texts = [f"sentence {n} " + "word " * (n % 37) for n in range(500)] + ["a"]
    pieces = _pieces(texts, 6, 256)
    assert sorted(t for p in pieces for t in p) == sorted(texts)  # each text once
    capped = _pieces(texts, 6, 64)  # at most 64 texts a piece, however few pieces were asked for
    assert sorted(t for p in capped for t in p) == sorted(texts) and all(0 < len(p) <= 64 for p in capped)
    costs = [sum(len(t) + TEXT_COST for t in p) for p in pieces]
    longest = max(len(t) + TEXT_COST for t in texts)
    target = sum(costs) / 6
    assert all(c < target + longest for c in costs) and 6 <= len(pieces) <= 7
    # texts of a length together: each piece's texts are longer than (or as long as) the next piece's
    assert all(min(map(len, a)) >= max(map(len, b)) for a, b in zip(pieces, pieces[1:]))
    assert _pieces([], 4, 64) == [] and _pieces(["x"], 4, 64) == [["x"]]


def test_a_workers_calls_count_their_cpu_seconds_beside_their_wall_seconds():
    # the benchmark compares the same work's CPU in 1 and 2 workers (stop 24): a call that waits
    # costs wall seconds and next to no CPU, one that computes costs CPU, each under its own key
    import time

    from figsearch.pipeline.ray_worker import _Worker

    worker = _Worker(None, [])

    def busy():
        until = time.thread_time() + 0.2
        while time.thread_time() < until:
            pass

    worker._timed("waiting", time.sleep, 0.3)
    worker._timed("computing", busy)
    stats = worker.stats()
    assert stats["waiting"] >= 0.3 and stats["waiting cpu"] < 0.1
    assert stats["computing cpu"] >= 0.2 and stats["computing"] >= stats["computing cpu"] - 0.01


def test_the_encoders_take_the_workers_share_of_the_cores(monkeypatch):
    # 2 workers on a 2-core machine: one thread each, not the encoder's default 2 each (4 on 2 cores)
    assert encoder_threads(True, 2, 2) == 1
    # 1 worker on 2 cores: the 2 a local build's process runs; never more than 2, never fewer than 1
    assert encoder_threads(True, 1, 2) == 2
    assert encoder_threads(True, 1, 16) == 2 and encoder_threads(True, 4, 2) == 1
    # a cluster's nodes: one thread per worker CPU
    assert encoder_threads(False, 1, 16) == 1
    # both encoders get that share (stop 28: the drawing encoder too, as in a local build's process)
    from figsearch.embed import catalog
    from figsearch.pipeline import ray_worker

    asked = {}
    monkeypatch.setattr(catalog, "create_visual", lambda spec, threads=None: asked.setdefault("visual", threads))
    monkeypatch.setattr(catalog, "create_text", lambda spec, threads=None: asked.setdefault("text", threads))
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # (the test process's torch keeps its threads)
    ray_worker._create("visual", "drawing", 2)
    ray_worker._create("text", "minilm", 2)
    assert asked == {"visual": 2, "text": 2}
    asked.clear()
    ray_worker._create("visual", "drawing", 1)
    ray_worker._create("text", "minilm", 1)
    assert asked == {"visual": 1, "text": 1}


def test_big_documents_are_sent_first_and_the_rest_mostly_in_the_plans_order(tmp_path):
    from figsearch.ingest.base import Unit

    units = []
    for n, size in enumerate([5, 50, 10, 40, 30, 1, 20, 2, 3, 4, 6, 7]):
        path = tmp_path / f"doc{n}.xml"
        path.write_bytes(b"x" * size)
        units.append(Unit(source=str(path), reader="us-xml", path=path, files=[path]))
    # 178 bytes, 2 workers: big is more than 178 / 16 bytes (50, 40, 30, 20), sent biggest first;
    # then the plan's order, its last 4 biggest first (7, 6, 4, 3)
    assert _by_cost(units, 100, 2) == [1, 3, 4, 6, 0, 2, 5, 7, 11, 10, 9, 8]
    # window by window (the plan's first 6: 136 bytes, big is more than 8.5; then the other 6: 42
    # bytes, big is more than 2.6: all but one)
    assert _by_cost(units, 6, 2) == [1, 3, 4, 2, 0, 5, 6, 11, 10, 9, 8, 7]
    # one worker: nothing is left for it alone at the end; the plan's order
    assert _by_cost(units, 100, 1) == list(range(12))
    # a document of many small sheets (files) is big too: each sheet is a drawing to read
    sheets = [tmp_path / f"sheet{n}.tif" for n in range(3)]
    for sheet in sheets:
        sheet.write_bytes(b"x" * 2)
    units.append(Unit(source=str(sheets[0]), reader="us-xml", path=sheets[0], files=sheets))
    assert _by_cost(units, 100, 2)[:5] == [12, 1, 3, 4, 6]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "figsearch", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_a_ray_address_that_does_not_answer_is_one_error_before_any_work(tmp_path):
    inputs = make_inputs(tmp_path / "in", documents=1)
    done = _cli("build", str(inputs), "-c", str(tmp_path / "coll"), "--ray", f"127.0.0.1:{_free_port()}")
    assert done.returncode != 0
    assert "does not answer" in done.stderr and "ray start --head" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("does not answer") == 1
    assert not (tmp_path / "coll").exists()


def test_a_local_build_does_not_import_ray(tmp_path):
    inputs = make_inputs(tmp_path / "in", documents=1)
    shutil.rmtree(inputs / "us")
    code = ("import sys, figsearch, figsearch.cli.build_cmd, figsearch.pipeline; "
            f"figsearch.pipeline.build([{str(inputs)!r}], {str(tmp_path / 'coll')!r}, skip_ocr=True); "
            "print('ray' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_a_ray_instance_started_here_runs_without_the_helpers_a_build_does_not_use():
    # --ray local's instance: no autoscaler monitor, no log monitor, no API server (each a Python
    # process importing Ray, seconds of CPU at the build's start on a small machine), and its
    # workers still run calls (the processes that are left are those of Ray's own bookkeeping)
    # stop 25: nor the raylet's two agents, each a Python process importing Ray before the node can
    # register: stand-ins (``ray_agent_standin``) write the ports the raylet waits for
    code = """
import pathlib, ray
from figsearch.pipeline.distributed import connect
from ray._private import worker
steps = []
print(connect('local', workers=1, mark=steps.append))
print(sorted(worker._global_node.all_processes))
print(ray.get(ray.remote(lambda: 6 * 7).remote()))
print(steps)
raylet, agents = str(worker._global_node.all_processes['raylet'][0].process.pid), []
for entry in pathlib.Path('/proc').iterdir():
    try:
        if entry.name.isdigit() and entry.joinpath('stat').read_text().rsplit(')', 1)[1].split()[1] == raylet:
            words = entry.joinpath('cmdline').read_bytes().decode(errors='replace').split(chr(0))
            agents.append(next((w for w in words if w.endswith('.py') and 'worker' not in w), ''))
    except (OSError, IndexError):
        pass
print(sorted(pathlib.Path(a).name for a in agents if a))
# stop 30: the tries to connect to a local socket (the raylet's to the object store it has just started) every
# 20 ms, not every second; what a worker of the instance runs with, as the raylet
print(ray.get(ray.remote(lambda: [getattr(__import__('ray._raylet', fromlist=['Config']).Config, name)() for name in
                                  ('raylet_client_connect_timeout_milliseconds', 'raylet_client_num_connect_attempts')])
              .remote()))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    workers, processes, answer, steps, agents, connecting = done.stdout.strip().splitlines()[-6:]
    assert workers == "1" and answer == "42"
    wait, tries = eval(connecting)  # noqa: S307 - our own print
    assert wait <= 50 and wait * tries >= 10_000, connecting  # Ray's default: 1000 ms, 10 tries
    # the raylet's Python children but its workers: the two stand-ins, not Ray's agents
    assert agents == "['ray_agent_standin.py', 'ray_agent_standin.py']", agents
    # the benchmark's timeline of the start: each step once, in order
    assert steps == "['gcs up', 'raylet started', 'node registered']", steps
    assert "raylet" in processes and "gcs_server" in processes
    assert not {"monitor", "log_monitor", "dashboard"} & set(eval(processes)), processes  # noqa: S307 - our own print


def _build_command(paths, collection: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "figsearch", "build", *map(str, paths), "-c", str(collection), "--skip-ocr",
            "--visual-model", "hog", "--text-model", "none", "-q", *extra]


@pytest.mark.slow
def test_a_killed_ray_driver_resumes_on_rerun(tmp_path):
    """The kill test through --ray: the driver (and the Ray instance it started) killed mid-build."""
    from kill_ingest import _env
    from reliability_helpers import PATENTS, committed_patents, kill_when

    data = make_inputs(tmp_path / "data")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    env = {**_env(), "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(_build_command([data], reference), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ray_build = _build_command([data], killed, "--ray", "local", "-j", "2")
    process = subprocess.Popen(ray_build, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    assert kill_when(process, killed, 2, timeout=300)  # killed with some patents committed, not all
    assert 2 <= committed_patents(killed) < PATENTS
    done = subprocess.run(ray_build, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    difference = compare(snapshot(reference), snapshot(killed))
    assert difference.equal, str(difference)


def test_a_worker_that_is_ready_late_joins_the_calls_in_flight(cluster):
    """``_Pool.map(join=...)``: a worker named by ``join`` (one that has loaded its text encoder by
    now) takes calls from then on; the results still come back in the order of the calls."""
    from figsearch.pipeline.distributed import _Pool

    @ray.remote(num_cpus=0)
    class Echo:
        def __init__(self, n):
            self.n = n

        def texts(self, piece):
            return self.n, piece

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Echo.remote(0), Echo.remote(1)]
    out = []

    def join():
        return [0] if len(out) < 2 else [0, 1]  # worker 1 is ready once 2 results have come back

    calls = ((n, ("texts", (n,))) for n in range(40))
    for key, ref in pool.map(calls, workers=[0], per_worker=1, join=join):
        out.append((key, ray.get(ref)))
    assert [key for key, _ in out] == list(range(40)) and [piece for _, (_, piece) in out] == list(range(40))
    by = {n for _, (n, _) in out}
    assert by == {0, 1}  # worker 1 took calls once it was named
    first = [n for _, (n, _) in out]
    assert set(first[:2]) == {0}  # and not before
    without = [ray.get(ref) for _, ref in pool.map(((n, ("texts", (n,))) for n in range(5)), workers=[0])]
    assert {n for n, _ in without} == {0}


def test_a_free_worker_gets_its_next_call_before_the_last_result_is_given_back(cluster):
    """``_Pool.map``: when a call is done, its worker is given the next call before that result is
    given back (the build's caller copies and unpickles each result before asking for more, and the
    worker would wait that long between two documents); the results still come in the calls' order."""
    from figsearch.pipeline.distributed import _Pool

    @ray.remote(num_cpus=0)
    class Echo:
        def work(self, key):
            return key

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Echo.remote()]
    sent, seen = [], []

    def calls():
        for n in range(6):
            sent.append(n)
            yield n, ("work", (n,))

    for key, ref in pool.map(calls(), per_worker=1, window=16):
        seen.append((key, ray.get(ref), len(sent)))
    assert [(key, value) for key, value, _ in seen] == [(n, n) for n in range(6)]
    # when result n came back, call n + 1 was already on its way to the (only) worker
    assert [count for _, _, count in seen] == [min(n + 2, 6) for n in range(6)]


def test_a_worker_with_nothing_left_to_do_takes_spare_work(cluster):
    """``_Pool.map(spare=...)``: once every call is sent, a free worker is given spare work (the
    texts of committed documents, in the build); its results are not among those given back, and
    no worker is given any while calls are left to send."""
    from figsearch.pipeline.distributed import _Pool

    @ray.remote(num_cpus=0)
    class Echo:
        def __init__(self, n):
            self.n = n

        def work(self, seconds, key):
            import time

            time.sleep(seconds)
            return self.n, key

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Echo.remote(0), Echo.remote(1)]
    sent, asked = [], []

    def calls():
        for n in range(4):  # the last call is long: the other worker has nothing left to do meanwhile
            sent.append(n)
            yield n, ("work", (2.0 if n == 3 else 0.0, n))

    def spare(n):
        asked.append((n, len(sent)))
        if len(asked) > 2:
            return None
        return pool.actors[n].work.remote(0.0, f"spare {n}")

    out = [(key, ray.get(ref)) for key, ref in pool.map(calls(), per_worker=1, spare=spare)]
    assert [key for key, _ in out] == [0, 1, 2, 3] and [k for _, (_, k) in out] == [0, 1, 2, 3]
    assert asked and all(count == 4 for _, count in asked)  # only once every call was sent
    long = next(n for key, (n, _) in out if key == 3)
    assert {n for n, _ in asked} == {1 - long}  # and only to the worker that was free


def test_a_worker_finds_its_next_call_waiting_when_it_ends_one(cluster):
    """``_Pool.map(per_worker=2, tries=...)`` as the ingest calls it: the call after the one a worker
    runs is already sent to it (it waits on the worker with its arguments), so the worker does not
    idle between two calls while a result goes back and the next call comes; the last ``2 * workers``
    calls (``total``) go only to a worker with nothing in flight. The results come in the calls' order."""
    import time

    from figsearch.pipeline.distributed import _Pool

    @ray.remote(num_cpus=0)
    class Timed:
        def acked(self, method, *args):
            return True, getattr(self, method)(*args)

        def work(self, key):
            started = time.time()
            time.sleep(0.4)  # the driver has this long to send the next call while this one runs
            return key, started, time.time()

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Timed.remote()]
    ray.get(pool.actors[0].work.remote(-1))  # started
    sent: dict[int, float] = {}

    def calls():
        for n in range(8):
            sent[n] = time.time()
            yield n, ("work", (n,))

    out = [ray.get(ref) for _, ref in pool.map(calls(), per_worker=2, window=16, tries=4, total=8)]
    assert [key for key, _, _ in out] == list(range(8))
    ends = {key: end for key, _, end in out}
    # calls 1 to 5 were sent while the one before them still ran (with one call per worker, or sent
    # only once a result is back, each is sent after the one before has ended)
    assert all(sent[n] < ends[n - 1] for n in range(1, 6)), (sent, ends)
    # the last 2: only once the worker had nothing in flight
    assert all(sent[n] >= ends[n - 1] for n in (6, 7)), (sent, ends)


def test_a_worker_killed_with_two_calls_costs_only_the_killers_tries(cluster, tmp_path):
    """``_Pool.map(tries=...)``: a call that kills its worker on every try fails alone after its
    tries, each counted only while it ran alone on the restarted worker; the calls queued behind
    it (and one whose answer the death may have lost) are sent again and come back, none of their
    tries spent; every result once, in the calls' order."""
    import os

    from figsearch.pipeline.distributed import _Pool

    @ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=3)
    class Fragile:
        def acked(self, method, *args):
            return True, getattr(self, method)(*args)

        def work(self, key):
            if key == "kill":
                (tmp_path / f"try-{len(list(tmp_path.iterdir()))}").touch()
                os._exit(1)
            return key, os.getpid()

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Fragile.remote()]
    keys = ["a", "kill", "b", "c"]
    out = []
    for key, ref in pool.map(((k, ("work", (k,))) for k in keys), per_worker=2, window=16, tries=2):
        try:
            out.append((key, ray.get(ref)[0]))
        except ray.exceptions.RayActorError:
            out.append((key, "died"))
    assert out == [("a", "a"), ("kill", "died"), ("b", "b"), ("c", "c")]
    # its first death had "b" queued behind it (counted for neither), then 2 tries alone
    assert len(list(tmp_path.iterdir())) == 3


def test_the_texts_left_at_the_ingests_end_go_to_a_worker_once_it_is_free(cluster):
    """``_TextsAhead.flush``: each piece goes to a worker once it has encoded its last one (here
    worker 0 still encodes a chunk given during the ingest, ``spare``), not in turn."""
    import collections
    import time

    from figsearch.pipeline.distributed import _Pool, _TextsAhead

    @ray.remote(num_cpus=0)
    class Encoder:
        def __init__(self, n):
            self.n = n

        def texts(self, spec, texts):
            time.sleep(2.0 if texts[0] == "slow" else 0.0)
            return [self.n] * len(texts)

    pool = object.__new__(_Pool)
    pool.ray, pool.actors = ray, [Encoder.remote(0), Encoder.remote(1)]
    ahead = _TextsAhead("spec")
    ahead.add(["slow"] + [f"spare {i:03d}" for i in range(127)])
    ahead.send(pool, 0, ahead.take(128))  # worker 0 still encodes these when the ingest ends
    ahead.add([f"text {i:03d}" for i in range(120)])
    ahead.flush(pool)
    out = ahead.collect(pool, "spec")
    assert len(out) == 248 and {out[f"spare {i:03d}"] for i in range(127)} == {0}
    by = collections.Counter(out[f"text {i:03d}"] for i in range(120))
    assert by[1] > 2 * by[0], by  # in turn: 60 each


def test_an_index_is_added_in_shards_by_ray_tasks_as_one_process_adds_it(cluster, tmp_path, monkeypatch):
    """The Ray build's shard executor (``RayCluster.index_shards``: ``pipeline.ray_shards``): each
    shard filled by a Ray task from the trained index and vectors sent through the object store,
    written back by the driver and merged in order, gives the index one sequential add gives; a
    shard file kept by an interrupted build is not sent again."""
    pytest.importorskip("faiss")
    from figsearch.index import modality, shards
    from figsearch.pipeline.ray_shards import shards_on_ray

    faiss = modality._faiss()  # with its thread count set: unset, OpenMP spins beside Ray's processes
    monkeypatch.setattr(shards, "SHARD_MIN", 1000)
    monkeypatch.setattr(shards, "SHARD_MAX", 6000)  # 20,000 vectors: 4 shards
    rng = np.random.default_rng(7)
    x = rng.standard_normal((60, 32))[rng.integers(0, 60, 20_000)] + 0.35 * rng.standard_normal((20_000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    path = tmp_path / "v.f16"
    x.tofile(path)
    empty = faiss.index_factory(32, "IVF64,PQ16x4fs", faiss.METRIC_INNER_PRODUCT)
    empty.train(x[:5000].astype(np.float32))
    trained = faiss.serialize_index(empty)
    one, on_ray, resumed = (faiss.deserialize_index(trained) for _ in range(3))
    shards.add_vectors(faiss, one, path, "<f2", len(x), 32, workers=1)
    sent = []

    def ray_map(fn, tasks):
        tasks = list(tasks)
        sent.extend(t for t in tasks if not Path(t.out).exists())
        return shards_on_ray(ray, tasks, in_flight=2)

    shards.add_vectors(faiss, on_ray, path, "<f2", len(x), 32, workers=2, map_shards=ray_map)
    assert [(t.start, t.stop) for t in sent] == [(0, 5000), (5000, 10000), (10000, 15000), (15000, 20000)]
    queries = x[:40].astype(np.float32)
    for index in (one, on_ray, resumed):
        index.nprobe = 16
    expected = one.search(queries, 50)
    got = on_ray.search(queries, 50)
    np.testing.assert_array_equal(expected[1], got[1])
    np.testing.assert_array_equal(expected[0], got[0])
    # an interrupted build's shard files are kept in its resume directory: only the missing ones are sent
    resume = tmp_path / "resume"
    resume.mkdir()
    first = faiss.deserialize_index(trained)
    first.add_with_ids(x[:5000].astype(np.float32), np.arange(5000, dtype=np.int64))
    faiss.write_index(first, str(resume / "shard-0-5000.faiss"))
    sent.clear()
    shards.add_vectors(faiss, resumed, path, "<f2", len(x), 32, workers=2, map_shards=ray_map, resume=resume)
    assert [(t.start, t.stop) for t in sent] == [(5000, 10000), (10000, 15000), (15000, 20000)]
    np.testing.assert_array_equal(expected[1], resumed.search(queries, 50)[1])



@pytest.mark.slow
def test_what_the_driver_ingests_while_ray_starts_is_the_local_builds(tmp_path):
    """``--ray local`` with ``DRIVER_INGEST`` (off by default): while Ray starts, the driver ingests
    documents itself and reads their signs (``_DriverIngest``); the collection is the local build's. In a fresh process, so that the
    build starts its own Ray instance (the module's fixture has one already)."""
    inputs = make_inputs(tmp_path / "in", documents=3)
    options = "skip_ocr=False, visual_model='hog', text_model='none'"
    code = ("import json; from figsearch.pipeline.building import build; "
            "from figsearch.pipeline import distributed; from figsearch.pipeline.distributed import RayCluster; "
            "distributed.DRIVER_INGEST = True; "
            f"build([{str(inputs)!r}], {str(tmp_path / 'local')!r}, {options}); "
            "cluster = RayCluster('local', workers=1); "
            f"build([{str(inputs)!r}], {str(tmp_path / 'ray')!r}, cluster=cluster, {options}); "
            "cluster.close(); print(json.dumps(dict(cluster.own_ingest)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    own = json.loads(done.stdout.strip().splitlines()[-1])
    assert own["documents"] >= 1  # Ray takes seconds to start; a synthetic document, a fraction of one
    difference = compare(snapshot(tmp_path / "local"), snapshot(tmp_path / "ray"))
    assert difference.equal, str(difference)
    assert not (tmp_path / "ray" / ".ray-driver-ingest.json").exists()  # only after a stop mid-document


def test_a_drawing_read_on_a_worker_is_encoded_from_the_pixels_decoded_to_read_it(monkeypatch):
    # stop 25: a worker decoded each drawing's PNG twice, to read its signs and to encode it; the
    # encoder's input is now prepared from the pixels decoded for the reading, the same input
    import collections
    import io
    from types import SimpleNamespace

    from PIL import Image

    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.pipeline import embed as embed_stage
    from figsearch.pipeline import ray_worker
    from figsearch.records import FigureRole

    worker = ray_worker._Worker(None, [("visual", DEFAULT_VISUAL_ENCODER)])
    worker.ready()
    encoder = worker._visual_loaded(DEFAULT_VISUAL_ENCODER)

    class NoWords:  # an OCR engine that finds nothing: the reading is not what is tested here
        def read(self, image):
            return []

    files = {f"d{n}.png": _boxed_drawing_png(n) for n in range(3)}
    prepare = ray_worker._backbone_prepare(encoder)
    assert prepare is not None
    seconds = collections.defaultdict(float)
    *_, ready = ray_worker._read_ahead(files["d0.png"], seconds, NoWords(), False, prepare)
    assert np.array_equal(ready, encoder.prepare(embed_stage.decode_stored(io.BytesIO(files["d0.png"]))))
    assert seconds["encode images cpu"] > 0  # the preparing is counted as encoding, as it was
    assert ray_worker._backbone_prepare(object()) is None  # another encoder: from the bytes, as before

    figures = [SimpleNamespace(figure_id=f"f{n}", image_path=f"d{n}.png", image_sha256=f"s{n}", role=FigureRole.DRAWING)
               for n in range(3)]
    result = SimpleNamespace(documents=[SimpleNamespace(figures=figures)])
    decoded = []
    decode = embed_stage.decode_stored
    monkeypatch.setattr(embed_stage, "decode_stored", lambda source: decoded.append(1) or decode(source))
    vectors = worker._encode_drawings(None, result, files, DEFAULT_VISUAL_ENCODER, {"f0": ready, "f2": prepare(
        Image.open(io.BytesIO(files["d2.png"])))})
    assert len(decoded) == 1  # only the drawing not prepared (f1) is decoded again
    expected = encoder.encode([decode(io.BytesIO(files[f"d{n}.png"])) for n in range(3)])
    assert sorted(vectors) == ["f0", "f1", "f2"]
    for n in range(3):
        spec, digest, vector = vectors[f"f{n}"]
        assert (spec, digest) == (DEFAULT_VISUAL_ENCODER, f"s{n}")
        np.testing.assert_allclose(vector, expected[n], atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_worker_with_two_cores_encodes_its_drawings_beside_the_reading(threads, monkeypatch):
    # stop 28: 1 worker on a 2-core node encodes each chunk of prepared drawings in a thread of its
    # own while the next drawings are read (a local build's process encodes on 2 threads); a worker
    # with one core (2 workers on 2 cores) encodes after the reading, in the calling thread
    import collections
    import io
    import threading
    from types import SimpleNamespace

    from figsearch.embed.catalog import DEFAULT_VISUAL_ENCODER
    from figsearch.pipeline import embed as embed_stage
    from figsearch.pipeline import ray_worker
    from figsearch.records import FigureRole

    worker = ray_worker._Worker(None, [("visual", DEFAULT_VISUAL_ENCODER)], threads)
    worker.ready()
    encoder = worker._visual_loaded(DEFAULT_VISUAL_ENCODER)
    assert encoder.threads == threads  # the worker's share (``encoder_threads``)

    where = []
    run = encoder._run
    encoder._run = lambda grey: where.append(threading.current_thread().name) or run(grey)

    class NoWords:  # an OCR engine that finds nothing: the reading is not what is tested here
        def read(self, image):
            return []

    files = {f"d{n}.png": _boxed_drawing_png(n) for n in range(9)}
    figures = [SimpleNamespace(figure_id=f"f{n}", image_path=f"d{n}.png", image_sha256=f"s{n}", role=FigureRole.DRAWING)
               for n in range(9)]
    result = SimpleNamespace(documents=[SimpleNamespace(figures=figures, patent=None)])
    monkeypatch.setattr(ray_worker, "_numerals_wanted", lambda document: False)  # no patent text here
    prepare = ray_worker._backbone_prepare(encoder)
    prepared = ray_worker._EncodeBehind(encoder, worker._encoding()) if threads > 1 else {}
    boxes = ray_worker.read_signs(SimpleNamespace(source="test"), result, files.get, NoWords(), worker.seconds, prepare,
                                  prepared)
    assert sorted(boxes) == [f"f{n}" for n in range(9)]
    if threads > 1:  # the first two chunks of 4 were handed to the encoding thread during the reading
        assert len(prepared._running) == 2 and len(prepared._waiting) == 1
    vectors = worker._encode_drawings(None, result, files, DEFAULT_VISUAL_ENCODER, prepared)
    expected = encoder.encode([embed_stage.decode_stored(io.BytesIO(files[f"d{n}.png"])) for n in range(9)])
    for n in range(9):
        spec, digest, vector = vectors[f"f{n}"]
        assert (spec, digest) == (DEFAULT_VISUAL_ENCODER, f"s{n}")
        np.testing.assert_allclose(vector, expected[n], atol=1e-6)
    caller = threading.current_thread().name
    if threads > 1:  # 3 chunks (4, 4, 1), all in the encoding thread
        assert where[:3] == ["figsearch-encode_0"] * 3
        assert worker.seconds["encode images behind"] > 0 and worker.seconds["encode images cpu"] > 0
    else:
        assert set(where[:3]) == {caller} and worker._encoder_thread is None


def test_cut_figures_are_mixed_with_the_sheet_vectors_the_workers_made_as_the_mixing_step_mixes_them(tmp_path):
    # a Ray build's driver mixes each cut figure's vector, as it stores it, with the vector a worker made of its
    # sheet while ingesting (a drawing then): the same vectors and digests as ``mix_sheet_context`` stores, which
    # then finds nothing to mix (and encodes nothing); a sheet vector of other pixels or another spec is not used
    from _search_helpers import CALLS
    from test_sheet_context import _cut_sheet

    from figsearch.embed.catalog import create_visual, encoder_key
    from figsearch.pipeline import embed as embed_stage
    from figsearch.pipeline.distributed import _encoded_sheets, _mixed_with_sheets
    from figsearch.pipeline.embed import EmbedReport
    from figsearch.pipeline.index import update_collection
    from figsearch.store import Collection

    spec = "fake-angle-sheet@sheet=0.5"
    expected_dir, ray_dir = tmp_path / "expected", tmp_path / "ray"
    _cut_sheet(expected_dir)
    _cut_sheet(ray_dir)
    encoder = create_visual(spec)
    key = encoder_key(encoder)
    with Collection.open(expected_dir, write=True) as c:
        update_collection(c, visual_model=spec, text_model="none")
        want_vectors, want_inputs = c.vectors.fetch("visual", key, [f.figure_id for f in c.figures()]), \
            c.vectors.inputs("visual", key)
    with Collection.open(ray_dir, write=True) as c:
        todo, _ = embed_stage.plan_visual(c, encoder)
        sheet = c.figure("US1-B")
        sheet_vector = encoder.encode([embed_stage.decode_stored(c.path(sheet.image_path))])[0]
        for stale in ({"US1-B": ("other-spec", sheet.image_sha256, sheet_vector)},
                      {"US1-B": (spec, "other pixels", sheet_vector)}, {}):
            assert _encoded_sheets(c, spec, todo, stale) == {}
        ready = {"US1-B": (spec, sheet.image_sha256, sheet_vector)}
        sheet_of = _encoded_sheets(c, spec, todo, ready)
        assert sorted(sheet_of) == ["US1-B-fig1", "US1-B-fig2"]
        rows = [(f.figure_id, v, digest) for (f, digest), v in
                zip(todo, encoder.encode([embed_stage.decode_stored(c.path(f.image_path)) for f, _ in todo]))]
        report = EmbedReport("visual", key)
        c.vectors.save("visual", key, _mixed_with_sheets(rows, sheet_of, 0.5, report))
        assert report.mixed == 2
        calls = CALLS["visual"]
        assert embed_stage.mix_sheet_context(c, encoder) == 0 and CALLS["visual"] == calls
        got_vectors, got_inputs = c.vectors.fetch("visual", key, list(want_vectors)), c.vectors.inputs("visual", key)
    assert got_inputs == want_inputs and sorted(got_vectors) == sorted(want_vectors)
    for figure_id, vector in want_vectors.items():
        np.testing.assert_allclose(got_vectors[figure_id], vector, atol=1e-6, err_msg=figure_id)
