"""A full disk and a read-only collection: one clear error, and the collection still opens afterwards.

The disk is a real tiny tmpfs when the tests may mount one (root with CAP_SYS_ADMIN, as here);
elsewhere those tests skip with the reason, and a file-size limit (RLIMIT_FSIZE, which needs no
privilege) stands in for a full disk.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from collection_check import check_consistent, compare, leftovers, snapshot
from kill_ingest import _env, ingest_command, run_to_end
from reliability_helpers import FAILURES, PATENTS, make_inputs

from figsearch.errors import CollectionError
from figsearch.store import Collection


@contextlib.contextmanager
def tmpfs(where: Path, size_kb: int):
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({done.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True, capture_output=True)


def figsearch(*args: str, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "figsearch", *args], env=_env(), capture_output=True, text=True,
                          timeout=300, preexec_fn=limit)


def assert_clear_error(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("figsearch: error: ") and any(p in last for p in phrases), last


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """Inputs, and the reference collection an unhindered run makes of them."""
    root = tmp_path_factory.mktemp("disk")
    data = make_inputs(root / "data")
    run_to_end([data], root / "reference", jobs=2)
    return data, root / "reference"


def collection_kb(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) // 1024


@pytest.mark.slow
@pytest.mark.parametrize("fraction, jobs", [(0.1, 1), (0.5, 2)], ids=["while-creating", "mid-run"])
def test_disk_full_is_one_clear_error_and_resumes_when_space_is_back(inputs, tmp_path, fraction, jobs):
    data, reference = inputs
    size = max(64, int(collection_kb(reference) * fraction))
    with tmpfs(tmp_path / "disk", size) as disk:
        collection = disk / "c"
        full = subprocess.run(ingest_command([data], collection, jobs), env=_env(), capture_output=True, text=True,
                              timeout=300)
        assert_clear_error(full, "No space left on device", "database or disk is full")
        if (collection / "figsearch.sqlite").exists():
            shown = figsearch("info", "-c", str(collection), "--json")
            if shown.returncode == 0:  # it opens, with what was committed before the disk filled up
                assert check_consistent(collection) == []
            else:  # full before its schema was written: says so, and how to finish it
                assert_clear_error(shown, "creation did not finish")
        remount(disk, f"size={collection_kb(reference) * 3}k")
        run_to_end([data], collection, jobs)
        diff = compare(snapshot(reference), snapshot(collection))
        assert diff.equal, str(diff)
        assert leftovers(collection) == []


@pytest.mark.slow
def test_read_only_collection_is_searchable_and_refuses_writes(inputs, tmp_path):
    data, reference = inputs
    with tmpfs(tmp_path / "disk", collection_kb(reference) * 3) as disk:
        collection = disk / "c"
        run_to_end([data], collection, jobs=2)
        remount(disk, "ro")
        try:
            shown = figsearch("info", "-c", str(collection), "--json")
            assert shown.returncode == 0, shown.stderr  # readable on a read-only mount (no -shm can be made)
            assert '"patents": %d' % PATENTS in shown.stdout and '"failures": %d' % FAILURES in shown.stdout
            with Collection.open(collection) as store:
                assert len(store.figures()) == len(snapshot(reference).tables["figures"])
            refused = subprocess.run(ingest_command([data], collection, 1), env=_env(), capture_output=True,
                                     text=True, timeout=300)
            assert_clear_error(refused, "Read-only file system")
            with pytest.raises(CollectionError, match="Read-only file system"):
                Collection.open(collection, write=True)
        finally:
            remount(disk, "rw")
        # nothing was changed by the refused writer
        assert compare(snapshot(reference), snapshot(collection)).equal


def test_file_size_limit_stands_in_for_a_full_disk(inputs, tmp_path):
    """No privilege needed: writes beyond RLIMIT_FSIZE fail with EFBIG, as a full disk would."""
    data, reference = inputs
    collection = tmp_path / "c"
    done = figsearch("ingest", str(data), "-c", str(collection), "-j", "1", "-q", limit_bytes=64 * 1024)
    # SQLite calls EFBIG an I/O error
    assert_clear_error(done, "File too large", "database or disk is full", "disk I/O error")
    if figsearch("info", "-c", str(collection)).returncode == 0:
        assert check_consistent(collection) == []
    run_to_end([data], collection, jobs=1)
    assert compare(snapshot(reference), snapshot(collection)).equal


def test_unwritable_directory_as_non_root(tmp_path):
    """chmod stops writers only when not root (root ignores modes): skip with the reason otherwise."""
    if os.geteuid() == 0:
        pytest.skip("running as root, which writes through chmod; the read-only mount test covers this")
    collection = tmp_path / "c"
    Collection.open(collection, create=True).close()
    os.chmod(collection, 0o555)
    try:
        with pytest.raises(CollectionError):
            Collection.open(collection, write=True)
        with Collection.open(collection) as store:
            assert store.counts()["patents"] == 0
    finally:
        os.chmod(collection, 0o755)
