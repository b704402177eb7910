"""Killed ingests lose nothing: the small, CI-sized variant of tests/kill_ingest.py.

Each run is killed (SIGKILL to its process group: the CLI and its workers) once the
collection has a seeded number of patents committed, so every kill lands mid-run; the
collection must then be consistent, and after a final run equal an uninterrupted one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from collection_check import check_consistent, compare, leftovers, snapshot
from ingest_helpers import write_us_document
from kill_ingest import _env, info, ingest_command, run_to_end, start
from reliability_helpers import FAILURES, PATENTS, committed_patents, kill_when, make_inputs

from figsearch.store import TMP_DIR, Collection


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    data = make_inputs(tmp_path / "data")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _, summary = run_to_end([data], reference, jobs=2)
    assert summary["documents"] == PATENTS and summary["failures"] == FAILURES
    rng = random.Random(5)
    kills = 0
    for target in sorted(rng.sample(range(1, PATENTS - 2), 3)):
        if kill_when(start([data], killed, jobs=2), killed, target):
            kills += 1
            assert check_consistent(killed) == []
            counts = info(killed)  # `figsearch info` answers after a kill
            assert counts["patents"] >= target
    assert kills >= 2  # the targets are below the total: runs are really cut short
    run_to_end([data], killed, jobs=2)
    diff = compare(snapshot(reference), snapshot(killed))
    assert diff.equal, str(diff)
    assert leftovers(killed) == []
    _, again = run_to_end([data], killed, jobs=2)
    assert again["documents"] == 0 and again["skipped_archives"] == 1


def test_killed_writer_leftovers_are_swept_by_the_next_writer(tmp_path):
    root = tmp_path / "c"
    Collection.open(root, create=True).close()
    stale = root / TMP_DIR / "unpack-abc" / "member.xml"
    stale.parent.mkdir(parents=True)
    stale.write_text("<half")
    (root / TMP_DIR / ".KEY.png.123.tmp").write_bytes(b"\x89PNG half")
    with Collection.open(root):  # a reader leaves them (a writer may be using them)
        assert stale.exists()
    with Collection.open(root, write=True):
        assert not (root / TMP_DIR).exists()


def test_no_temporary_name_outside_the_scratch_folder(tmp_path, monkeypatch):
    """Images are written via the scratch folder, so a kill never strands a half file among them."""
    from figsearch.ingest.runner import ingest_paths
    from figsearch.fsutil import atomic_write_bytes

    seen = []

    def spy(path, data, *, tmp_dir=None):
        seen.append(tmp_dir)
        atomic_write_bytes(path, data, tmp_dir=tmp_dir)

    from figsearch.store import files  # where ingest writes its images since stop 22

    monkeypatch.setattr(files, "atomic_write_bytes", spy)
    write_us_document(tmp_path / "doc", sheets=1)
    with Collection.open(tmp_path / "c", create=True) as collection:
        ingest_paths(collection, [tmp_path / "doc"], jobs=1)
    assert seen and all(t == tmp_path / "c" / TMP_DIR for t in seen)
    assert leftovers(tmp_path / "c") == []


@pytest.mark.slow
def test_the_overlapped_builds_workers_die_with_a_build_killed_alone(tmp_path):
    """`kill -9 PID` of `figsearch build` (overlapped): its ingest worker, forked by the readers' forkserver
    since stop 30, and the readers must not live on (before stop 30 the readers, and with them the
    forkserver and the resource tracker, did: the server is their parent, and lives while they do)."""
    pytest.importorskip("tesserocr")
    data = make_inputs(tmp_path / "data", documents=4)
    collection = tmp_path / "c"
    command = [sys.executable, "-m", "figsearch", "build", str(data), "-c", str(collection), "-j", "2", "-q"]
    assert not _group_left_after_killing_alone(command, collection), "worker processes outlived their killed build"


def _group_left_after_killing_alone(command: list[str], collection, *, grace_s: float = 15) -> bool:
    """Runs ``command`` in a process group of its own, kills its first process alone (``kill -9 PID``)
    once a patent is committed, and tells whether any process of the group is still there ``grace_s`` later."""
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_until = time.monotonic() + 120
        while committed_patents(collection) < 1 and process.poll() is None and time.monotonic() < wait_until:
            time.sleep(0.01)
        assert process.poll() is None, "the command ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + grace_s
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        return _group_alive(process.pid)
    finally:
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.slow
def test_workers_die_with_a_parent_killed_alone(tmp_path):
    """`kill -9 PID` hits the CLI only: its decoding workers must not live on, writing into the collection."""
    data = make_inputs(tmp_path / "data", documents=4)
    collection = tmp_path / "c"
    assert not _group_left_after_killing_alone(ingest_command([data], collection, 2), collection), \
        "worker processes outlived their killed parent"
