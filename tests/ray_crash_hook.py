"""Run in every Ray worker of tests/test_ray_build.py (``worker_process_setup_hook``): kills the worker
process in the middle of a document whose source names ``crash-once`` (on its first try only) or
``crash-always`` (on every try), as an OOM kill or a native decoder crash would."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def setup() -> None:
    markers = os.environ.get("FIGSEARCH_TEST_CRASH_MARKERS")
    if not markers:
        return
    from figsearch.ingest import process

    original = process.process_unit

    def crashing(unit, root):
        if "crash-always" in unit.source:
            os._exit(1)
        if "crash-once" in unit.source:
            marker = Path(markers) / hashlib.sha1(unit.source.encode()).hexdigest()
            try:
                marker.open("x").close()
            except FileExistsError:
                pass  # tried before: this retry goes through
            else:
                os._exit(1)
        return original(unit, root)

    process.process_unit = crashing
