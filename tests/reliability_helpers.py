"""Inputs and process control shared by the reliability tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import zipfile
from pathlib import Path

from ingest_helpers import write_ep_document, write_pdf, write_tiff, write_us_document
from kill_ingest import _reap_group

#: US documents that make_inputs writes by default, and what the collection then holds
DOCUMENTS = 6
PATENTS = DOCUMENTS + 3  # and the EP document, the PDF, the zipped US document
FAILURES = 1


def make_inputs(root: Path, documents: int = DOCUMENTS) -> Path:
    """US documents with big-ish sheets (so a run takes a few seconds), EP, PDF, an archive, a bad file."""
    for i in range(documents):
        folder = root / "us" / f"doc{i}"
        write_us_document(folder, sheets=2, number=f"2025020{i:04d}")
        for sheet in folder.glob("*-D0000[12].TIF"):
            write_tiff(sheet, size=(1700, 2200))
    write_ep_document(root / "ep" / "EP1234567A1", figures=2)
    (root / "pdf").mkdir()
    write_pdf(root / "pdf" / "7-USD0528368.pdf", pages=3)
    packed = root / "packed"
    write_us_document(packed / "inner", sheets=1, number="20259990001")
    with zipfile.ZipFile(root / "bulk.zip", "w") as archive:
        for path in sorted((packed / "inner").iterdir()):
            archive.write(path, f"inner/{path.name}")
    for path in sorted((packed / "inner").iterdir()):
        path.unlink()
    (packed / "inner").rmdir()
    packed.rmdir()
    (root / "bad.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    return root


def committed_patents(collection: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{collection / 'figsearch.sqlite'}?mode=ro", uri=True, timeout=0.1)
        try:
            return db.execute("SELECT COUNT(*) FROM patents").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def kill_when(process: subprocess.Popen, collection: Path, patents: int, timeout: float = 120) -> bool:
    """SIGKILL the run's group once ``patents`` are committed; False when it finished first."""
    return kill_once(process, lambda: committed_patents(collection) >= patents, timeout)


def kill_once(process: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL the run's group as soon as ``ready()`` holds; False when the run finished first."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            _reap_group(process.pid)
            return True
        time.sleep(0.01)
    process.communicate()
    return False
