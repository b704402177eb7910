"""``ray.init`` for ``--ray local``: the wait for the new raylet asks the GCS's node list often
instead of waiting on Ray's whole-second answer (``distributed._get_node_once_registered``)."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from figsearch.pipeline import distributed  # noqa: E402


class _Info:
    def __init__(self, hex_id: str) -> None:
        self._hex = hex_id

    def hex(self) -> str:
        return self._hex


class _NodeInfo:
    def __init__(self, hex_id: str) -> None:
        self.node_id = _Info(hex_id)


def test_the_node_is_asked_for_once_the_gcs_lists_it(monkeypatch):
    import ray._raylet

    asked: list[str] = []

    class FakeGcsClient:
        def __init__(self, address: str) -> None:
            assert address == "gcs:1"

        def get_all_node_info(self, timeout=None):
            asked.append("list")
            ids = ["other"] + (["abc"] if len(asked) >= 4 else [])  # registered at the 4th look
            return {n: _NodeInfo(n) for n in ids}

    def ray_get_node(address, node_id):
        asked.append("get_node")
        return {"node_id": node_id}

    monkeypatch.setattr(ray._raylet, "GcsClient", FakeGcsClient)
    monkeypatch.setattr(distributed, "REGISTRATION_POLL_S", 0.001)
    assert distributed._get_node_once_registered(ray_get_node)("gcs:1", "abc") == {"node_id": "abc"}
    assert asked == ["list"] * 4 + ["get_node"]


def test_a_client_that_fails_leaves_the_wait_to_ray(monkeypatch):
    import ray._raylet

    class BrokenGcsClient:
        def __init__(self, address: str) -> None:
            raise TypeError("another Ray")

    monkeypatch.setattr(ray._raylet, "GcsClient", BrokenGcsClient)
    assert distributed._get_node_once_registered(lambda a, n: (a, n))("gcs:1", "abc") == ("gcs:1", "abc")


def test_the_lean_start_patches_rays_wait_for_the_call_only():
    from ray._private import node, services

    before = services.get_node, node.Node.start_head_processes, node.Node.start_ray_processes
    with distributed._lean_local_instance():
        assert services.get_node is not before[0]
        assert services.get_node.__name__ == "get_node_once_registered"
    assert (services.get_node, node.Node.start_head_processes, node.Node.start_ray_processes) == before


def test_a_step_of_rays_start_is_marked_once_it_is_done():
    steps: list[str] = []

    def step(value):
        steps.append("ran")
        return value * 2

    assert distributed._marked(step, steps.append, "gcs up")(21) == 42
    assert steps == ["ran", "gcs up"]
    assert distributed._marked(step, None, "gcs up")(1) == 2  # without a mark: the step alone


def test_the_wait_tells_when_the_node_has_registered(monkeypatch):
    import ray._raylet

    looks: list[int] = []

    class FakeGcsClient:
        def __init__(self, address: str) -> None:
            pass

        def get_all_node_info(self, timeout=None):
            looks.append(1)
            return {"abc": _NodeInfo("abc")} if len(looks) >= 3 else {}

    marked: list[tuple[str, int]] = []
    monkeypatch.setattr(ray._raylet, "GcsClient", FakeGcsClient)
    monkeypatch.setattr(distributed, "REGISTRATION_POLL_S", 0.001)
    wait = distributed._get_node_once_registered(lambda a, n: n, lambda step: marked.append((step, len(looks))))
    wait("gcs:1", "abc")
    assert marked == [("node registered", 3)]  # once, when the list first had it


def test_a_client_that_fails_marks_nothing(monkeypatch):
    import ray._raylet

    class BrokenGcsClient:
        def __init__(self, address: str) -> None:
            raise TypeError("another Ray")

    marked: list[str] = []
    monkeypatch.setattr(ray._raylet, "GcsClient", BrokenGcsClient)
    distributed._get_node_once_registered(lambda a, n: n, marked.append)("gcs:1", "abc")
    assert marked == []


def test_a_worker_process_knows_when_it_started_to_the_hundredth():
    # the timeline's "process started" of each Ray worker: from /proc/uptime, not /proc/stat's
    # btime, which is whole seconds (every process up to a second early)
    import subprocess
    import sys
    import time
    from pathlib import Path

    if not Path("/proc/uptime").exists():
        pytest.skip("no /proc")
    src = Path(distributed.__file__).resolve().parents[2]
    code = "from figsearch.pipeline.ray_worker import _process_started; print(_process_started())"
    before = time.time()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    started = float(done.stdout.strip())
    assert before - 0.05 <= started <= before + 1.0, (before, started)
