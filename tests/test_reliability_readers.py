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
