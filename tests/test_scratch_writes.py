"""Files written into a scratch folder that is read back and deleted are not fsynced (``fsutil.scratch_writes``):
a Ray worker's ingest, whose figure files the driver stores again, durably."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from ingest_helpers import write_us_document

from figsearch import fsutil
from figsearch.ingest.plan import plan_paths


@pytest.fixture
def fsyncs(monkeypatch):
    """The paths of the files and folders fsynced meanwhile."""
    seen: list[str] = []
    real = os.fsync

    def counting(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real(fd)

    monkeypatch.setattr(fsutil.os, "fsync", counting)
    return seen


def test_writes_skip_their_fsyncs_only_within_scratch_writes_and_only_in_that_thread(tmp_path, fsyncs):
    fsutil.atomic_write_bytes(tmp_path / "a" / "durable.bin", b"1")
    fsutil.fsync_directories({tmp_path / "a"})
    assert len(fsyncs) == 2
    other: list[int] = []
    with fsutil.scratch_writes():
        fsutil.atomic_write_bytes(tmp_path / "b" / "scratch.bin", b"2")
        fsutil.fsync_directories({tmp_path / "b"})
        # another thread meanwhile (a worker's encoding thread, the driver's writer) still writes durably
        thread = threading.Thread(target=lambda: (fsutil.atomic_write_bytes(tmp_path / "c.bin", b"3"),
                                                  other.append(len(fsyncs))))
        thread.start()
        thread.join()
    assert other == [3] and len(fsyncs) == 3
    assert (tmp_path / "b" / "scratch.bin").read_bytes() == b"2"  # written and renamed all the same
    fsutil.atomic_write_bytes(tmp_path / "d.bin", b"4")  # and durable again after it
    assert len(fsyncs) == 4


def test_a_ray_workers_ingest_fsyncs_nothing_and_returns_the_files_a_local_ingest_writes(tmp_path, fsyncs):
    from figsearch.ingest.process import process_unit
    from figsearch.pipeline.distributed import _payload
    from figsearch.pipeline.ray_worker import _ingest_unit

    write_us_document(tmp_path / "in" / "doc", sheets=2, number="20250200001")
    (unit,) = plan_paths([tmp_path / "in"]).units
    result, files = _ingest_unit(*_payload(unit))
    assert fsyncs == []  # not one file or folder of the scratch copy
    assert result.documents and len(files) == 2 * sum(len(d.figures) for d in result.documents)
    local = process_unit(unit, str(tmp_path / "local"))  # the local build's ingest writes the same files, durably
    assert fsyncs
    assert {relative: Path(tmp_path / "local", relative).read_bytes() for relative in files} == files
    assert [f.image_sha256 for d in local.documents for f in d.figures] == \
        [f.image_sha256 for d in result.documents for f in d.figures]
