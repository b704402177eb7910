"""``figsearch serve``: where it listens, what it says, and how it fails."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from server_fake import FakeBackend, build_collection  # noqa: E402

from figsearch.cli import main, serve_cmd  # noqa: E402


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Runs the command with the fake backend and a server that returns at once, recording what it got."""
    root = build_collection(tmp_path / "c", sheets_per_patent=1)
    seen = {}
    monkeypatch.setattr(serve_cmd, "load_backend", lambda path: FakeBackend(path))

    def fake_run(self, sockets=None):
        seen["config"] = self.config
        seen["address"] = sockets[0].getsockname()
        seen["app"] = self.config.app

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)

    def invoke(*args):
        result = CliRunner().invoke(main, ["serve", "--collection", str(root), *args])
        return result, seen

    return invoke


def test_binds_loopback_by_default_and_says_so(served):
    result, seen = served("--port", "0")
    assert result.exit_code == 0, result.output
    host, port = seen["address"]
    assert host == "127.0.0.1" and port > 0
    assert f"http://127.0.0.1:{port}/" in result.output
    assert "loopback only" in result.output
    assert "warning" not in result.output
    # the app it serves is figsearch's, with the default upload limit
    assert seen["app"].state.figsearch.limits.max_upload_bytes == 20 * 1024 * 1024
    assert any(m.cls.__name__ == "HostCheck" for m in seen["app"].user_middleware)


def test_warns_when_listening_beyond_loopback(served):
    result, seen = served("--host", "0.0.0.0", "--port", "0", "--max-upload-mb", "5")
    assert result.exit_code == 0, result.output
    assert seen["address"][0] == "0.0.0.0"
    assert "warning: listening on 0.0.0.0" in result.output and "no authentication" in result.output
    assert seen["app"].state.figsearch.limits.max_upload_bytes == 5 * 1024 * 1024
    assert not any(m.cls.__name__ == "HostCheck" for m in seen["app"].user_middleware)


def test_a_busy_port_is_a_clear_error(served):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result, _ = served("--port", str(port))
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_missing_collection_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--collection", str(tmp_path / "none"), "--port", "0"])
    assert result.exit_code == 2
    assert "figsearch: error: no collection at" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "host,loopback",
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.org", False)],
)
def test_is_loopback(host, loopback):
    assert serve_cmd.is_loopback(host) is loopback
