"""Readers keep answering from the last committed state while an ingest writes; a second writer is refused."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from collection_check import check_consistent
from ingest_helpers import write_us_document
from kill_ingest import _env, info, ingest_command, start
from reliability_helpers import FAILURES, PATENTS, committed_patents, make_inputs

from figsearch.errors import CollectionLocked
from figsearch.store import Collection


def wait_for(process: subprocess.Popen, collection, patents: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while committed_patents(collection) < patents:
        assert process.poll() is None, f"ingest ended before {patents} patents: {process.communicate()}"
        assert time.monotonic() < deadline, "ingest too slow"
        time.sleep(0.01)


def figures_by_patent(collection) -> dict[str, frozenset]:
    """One read transaction: what a search would see at one moment."""
    db = sqlite3.connect(f"file:{collection / 'figsearch.sqlite'}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")
        patents = {r[0]: set() for r in db.execute("SELECT publication_number FROM patents")}
        for pub, figure_id in db.execute("SELECT publication_number, figure_id FROM figures"):
            patents[pub].add(figure_id)
        db.execute("COMMIT")
    finally:
        db.close()
    return {pub: frozenset(ids) for pub, ids in patents.items()}


@pytest.mark.slow
def test_reads_during_a_paused_ingest_and_a_second_writer(tmp_path):
    data = make_inputs(tmp_path / "data")
    collection = tmp_path / "c"
    writer = start([data], collection, jobs=2)
    try:
        wait_for(writer, collection, 3)
        # freeze the writer (and its workers) mid-run, maybe inside a transaction
        os.killpg(writer.pid, signal.SIGSTOP)
        counts = info(collection)  # `figsearch info`, a separate process
        assert 3 <= counts["patents"] < PATENTS
        assert check_consistent(collection) == []
        second = subprocess.run(ingest_command([data], collection, 1), env=_env(), capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2
        assert f"is being written by pid {writer.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        with pytest.raises(CollectionLocked, match="searches keep working"):
            Collection.open(collection, write=True)
        with Collection.open(collection) as reader:  # read-only opens are never refused
            assert reader.counts()["patents"] == counts["patents"]
    finally:
        os.killpg(writer.pid, signal.SIGCONT)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    final = info(collection)
    assert final["patents"] == PATENTS and final["failures"] == FAILURES


@pytest.mark.slow
def test_every_read_during_an_ingest_sees_whole_patents_only(tmp_path):
    """Polled while the writer runs: each read sees whole patents (all their figures) or none of one."""
    data = make_inputs(tmp_path / "data")
    collection = tmp_path / "c"
    writer = start([data], collection, jobs=2)
    seen = []
    try:
        wait_for(writer, collection, 1)
        while writer.poll() is None:
            seen.append(figures_by_patent(collection))
            time.sleep(0.02)
    finally:
        if writer.poll() is None:
            writer.kill()
    _, err = writer.communicate()
    assert writer.returncode == 0, err
    final = figures_by_patent(collection)
    assert len(final) == PATENTS
    partial = [s for s in seen if 0 < len(s) < PATENTS]
    assert partial, "no read happened while the ingest was running"
    for state in seen:
        for pub, figures in state.items():
            assert figures == final[pub], f"{pub} seen half-written: {len(figures)} of {len(final[pub])} figures"
    sizes = [len(s) for s in seen]
    assert sizes == sorted(sizes)  # committed patents never disappear


def test_cli_second_writer_message(tmp_path):
    """The lock is held by an open writer in this process: the CLI says who holds it and exits 2."""
    data = tmp_path / "empty"
    data.mkdir()
    with Collection.open(tmp_path / "c", create=True):
        done = subprocess.run([sys.executable, "-m", "figsearch", "ingest", str(data), "-c", str(tmp_path / "c")],
                              env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("figsearch: error: collection") and f"pid {os.getpid()}" in done.stderr


def _top(service, figure_id: str) -> list[tuple[str, float]]:
    from figsearch.search.query import Query

    return [(h.figure_id, round(h.score, 4)) for h in service.search(Query(figure_id=figure_id, k=5)).hits]


#: seconds a search may take while an index run is paused (model loading included)
SEARCH_PATIENCE = 90


def pause_holding_index_lock(process: subprocess.Popen, collection, timeout: float = 600) -> bool:
    """SIGSTOP ``process`` at a moment it holds COLLECTION/index/.lock; False if it never did."""
    import errno
    import fcntl

    lock = collection / "index" / ".lock"
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if lock.exists():
            with open(lock, "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    os.killpg(process.pid, signal.SIGSTOP)
                    try:  # still held once stopped? (it may have let go in between)
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        fcntl.flock(handle, fcntl.LOCK_UN)
                    except OSError:
                        return True
                    os.killpg(process.pid, signal.SIGCONT)
        time.sleep(0.001)
    return False


def _indexed(collection) -> int:
    """Vectors in the visual index, as its manifest says."""
    import json

    manifest = json.loads((collection / "index" / "manifest.json").read_text())
    return manifest["modalities"]["visual"]["count"]


def _wait_rows(process: subprocess.Popen, collection, sql: str, at_least: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        db = sqlite3.connect(f"file:{collection / 'figsearch.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            count = db.execute(sql).fetchone()[0]
        finally:
            db.close()
        if count >= at_least:
            return
        assert process.poll() is None, f"writer ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "writer too slow"
        time.sleep(0.05)


@pytest.mark.slow
def test_searches_answer_from_the_last_index_while_ingest_and_index_write(tmp_path):
    import json

    from figsearch.search.query import Query
    from figsearch.search.service import SearchService

    first, more = make_inputs(tmp_path / "first", documents=2), tmp_path / "more"
    collection = tmp_path / "c"
    ingest = subprocess.run(ingest_command([first], collection, 1), env=_env(), capture_output=True, text=True)
    assert ingest.returncode == 0, ingest.stderr
    index = [sys.executable, "-m", "figsearch", "index", "-c", str(collection)]
    done = subprocess.run(index, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with SearchService.open(collection) as service:
        query = service.collection.figures()[0].figure_id
        before = _top(service, query)
        patents = service.collection.counts()["patents"]
        vectors = service.collection.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    _indexed_before = _indexed(collection)
    assert before
    # more documents come in while we search: the index is not touched, answers stay the same
    for i in range(3):
        write_us_document(more / f"doc{i}", sheets=2, number=f"2025030{i:04d}")
    writer = start([more], collection, jobs=1)
    try:
        _wait_rows(writer, collection, "SELECT COUNT(*) FROM patents", patents + 1)
        os.killpg(writer.pid, signal.SIGSTOP)
        with SearchService.open(collection) as service:
            assert _top(service, query) == before
            notes = service.search(Query(figure_id=query, k=5)).notes
            assert any("visual index is stale" in n and "added since the last `figsearch index`" in n for n in notes)
    finally:
        os.killpg(writer.pid, signal.SIGCONT)
    assert writer.wait(timeout=300) == 0
    # now an index run embeds them and writes the index; paused while it holds the index lock, a search
    # (in another process, as the server is) must still answer from the last index, and soon
    indexer = subprocess.Popen(index, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        assert pause_holding_index_lock(indexer, collection), "the index run never held the index lock"
        search = subprocess.run([sys.executable, "-m", "figsearch", "search", "-c", str(collection), "--figure",
                                 query, "-k", "5", "--json"], env=_env(), capture_output=True, text=True,
                                timeout=SEARCH_PATIENCE)
        assert search.returncode == 0, search.stderr[-2000:]
        # it answered from the last index run's snapshot (a search never builds one) and said it is behind
        assert any("index is stale" in n for n in json.loads(search.stdout)["notes"]), search.stdout[-2000:]
        second = subprocess.run(index, env=_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "is being written by pid" in second.stderr
    except subprocess.TimeoutExpired:
        pytest.fail(f"a search waited more than {SEARCH_PATIENCE} s for a paused index run: readers are blocked "
                    "by the index writer's lock")
    finally:
        os.killpg(indexer.pid, signal.SIGCONT)
    _, err = indexer.communicate(timeout=600)
    assert indexer.returncode == 0, err
    with SearchService.open(collection) as service:
        after = _top(service, query)
    assert after
    assert _indexed(collection) > _indexed_before  # the new drawings are searchable now
