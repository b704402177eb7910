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
    from ray._private import services

    before = services.get_node
    with distributed._lean_local_instance():
        assert services.get_node is not before
        assert services.get_node.__name__ == "get_node_once_registered"
    assert services.get_node is before
