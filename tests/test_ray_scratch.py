"""A Ray worker killed mid-document leaves its scratch folder; the next worker removes it."""

import os
import subprocess
import sys

from figsearch.pipeline import ray_worker


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_scratch_folders_of_dead_workers_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / f"{ray_worker.SCRATCH_PREFIX}{_dead_pid()}-abc"
    live = tmp_path / f"{ray_worker.SCRATCH_PREFIX}{os.getpid()}-def"
    unnamed = tmp_path / f"{ray_worker.SCRATCH_PREFIX}xyz"  # an older build's name: no pid to check
    other = tmp_path / "something-else"
    for folder in (dead, live, unnamed, other):
        (folder / "in").mkdir(parents=True)
        (folder / "in" / "a.xml").write_text("x")

    assert ray_worker.remove_stale_scratch(str(tmp_path)) == 1
    assert not dead.exists()
    assert live.exists() and unnamed.exists() and other.exists()


def test_a_missing_temporary_folder_is_no_error(tmp_path):
    assert ray_worker.remove_stale_scratch(str(tmp_path / "absent")) == 0
