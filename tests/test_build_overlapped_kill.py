"""A killed overlapped build (``figsearch build --overlap``, the default) loses nothing.

The overlapped build writes documents, readings and vectors at the same time
(figsearch.pipeline.overlapped), so a kill can land in any stage. Each run here is killed
(SIGKILL to its process group: the CLI, its ingest and OCR workers) once the collection holds a
given number of patents, of figures read, or of vectors; the collection must then be
consistent, and after a final run equal (tables, stored files, vectors) to an uninterrupted
one-process build.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from collection_check import check_consistent, compare, snapshot
from kill_ingest import _env
from reliability_helpers import kill_once
from test_build_overlapped import _documents, _vectors

pytest.importorskip("tesserocr")
pytest.importorskip("faiss")
pytest.importorskip("torch")

#: (what is counted, how many): a kill once the collection holds that many
_KILLS = [
    ("SELECT COUNT(*) FROM patents", 1),  # mid-ingest
    ("SELECT COUNT(*) FROM figures WHERE ocr_done_at IS NOT NULL", 2),  # figures being read
    ("SELECT COUNT(*) FROM embeddings", 1),  # vectors being stored
]


def _build(docs, collection, *extra) -> list[str]:
    return [sys.executable, "-m", "figsearch", "build", str(docs), "-c", str(collection), "-q", *extra]


def _count(collection, query: str) -> int:
    try:
        db = sqlite3.connect(f"file:{collection / 'figsearch.sqlite'}?mode=ro", uri=True, timeout=0.1)
        try:
            return db.execute(query).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not created yet, or the table not yet there
        return 0


def _kill_when(process: subprocess.Popen, collection, query: str, at_least: int, timeout: float = 300) -> bool:
    return kill_once(process, lambda: _count(collection, query) >= at_least, timeout)


@pytest.mark.slow  # each run loads the encoders in a fresh process
def test_killed_overlapped_builds_resume_to_the_one_process_build(tmp_path):
    docs = _documents(tmp_path / "docs")
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    done = subprocess.run(_build(docs, reference, "-j", "1"), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    kills = 0
    for query, at_least in _KILLS:
        process = subprocess.Popen(_build(docs, killed, "-j", "2", "--overlap"), env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if _kill_when(process, killed, query, at_least):
            kills += 1
            assert check_consistent(killed) == []
    assert kills >= 2  # most kills land mid-run (a run that got further each time may finish first)
    done = subprocess.run(_build(docs, killed, "-j", "2", "--overlap"), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    ref, got = snapshot(reference), snapshot(killed)
    ref.tables.pop("embeddings", None), got.tables.pop("embeddings", None)
    diff = compare(ref, got)
    assert diff.equal, str(diff)
    a, b = _vectors(reference), _vectors(killed)
    assert a.keys() == b.keys() and a
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-5
