"""A worker of ``figsearch serve --workers N`` ends when its supervisor is killed outright (stop 27): orphaned
workers went on serving the port, and the next ``figsearch serve`` on it failed with "Address already in use"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

# the "supervisor": starts a "worker" that watches it, prints the worker's pid, then waits to be killed
PARENT = f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import sys, time
sys.path.insert(0, {SRC!r})
from figsearch.server.supervisor import watch_parent
watch_parent(0.05)
print("watching", flush=True)
time.sleep(60)
'''], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "watching"
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie waits for init to reap it: it ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_ends_when_its_supervisor_is_killed_outright():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        time.sleep(0.3)
        assert _alive(worker)  # it watches, it does not end by itself
        parent.send_signal(signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived its killed supervisor"
    finally:
        parent.kill()
        parent.wait(5)
        if "worker" in locals() and _alive(worker):
            os.kill(worker, signal.SIGKILL)
