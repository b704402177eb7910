"""The keeper's commands end to end on the CLI: a full disk in any stage is one line (exit 2), never a traceback."""

from __future__ import annotations

import errno
import sqlite3

import pytest
from click.testing import CliRunner

from figsearch.cli import main


@pytest.mark.parametrize("error, phrase", [
    (sqlite3.OperationalError("database or disk is full"), "cannot write to the collection: database or disk is full"),
    (OSError(errno.ENOSPC, "No space left on device", "/c/.tmp/x.png"), "cannot write /c/.tmp/x.png: No space left"),
], ids=["sqlite", "file"])
def test_a_full_disk_in_the_builds_later_stages_is_one_line(tmp_path, monkeypatch, error, phrase):
    """Seen on a 80 MB tmpfs: the overlapped build's signs stage raised a traceback where the ingest gives one
    line (figsearch.pipeline.signs writes cut figures and commits outside the ingest's handling)."""
    import figsearch.pipeline as pipeline

    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "build", full, raising=False)
    (tmp_path / "in").mkdir()
    done = CliRunner().invoke(main, ["build", str(tmp_path / "in"), "-c", str(tmp_path / "c")])
    assert done.exit_code == 2
    lines = done.output.strip().splitlines()
    assert lines[-1].startswith("figsearch: error: ") and phrase in lines[-1], done.output
    assert "free some space and rerun" in lines[-1] and "Traceback" not in done.output


def test_other_os_errors_are_not_disguised_as_a_full_disk(tmp_path, monkeypatch):
    import figsearch.pipeline as pipeline

    def broken(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pipeline, "build", broken, raising=False)
    (tmp_path / "in").mkdir()
    done = CliRunner().invoke(main, ["build", str(tmp_path / "in"), "-c", str(tmp_path / "c")])
    assert isinstance(done.exception, OSError) and done.exception.errno == errno.EIO
