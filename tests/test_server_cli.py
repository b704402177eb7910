"""``figsearch serve``: where it listens, what it says, and how it fails."""

from __future__ import annotations

import os
import re

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("uvicorn.supervisors")

from fastapi.testclient import TestClient  # noqa: E402
from server_fake import FakeBackend, build_collection  # noqa: E402

from figsearch.cli import main, serve_cmd  # noqa: E402
from figsearch.server import supervisor  # noqa: E402


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Runs the command with the fake backend and a server that returns at once, recording what it got."""
    root = build_collection(tmp_path / "c", sheets_per_patent=1)
    seen = {}
    monkeypatch.setattr(serve_cmd, "load_backend", lambda path: FakeBackend(path))
    for name in (serve_cmd.TOKEN_ENV, serve_cmd.WORKER_SETTINGS_ENV):
        monkeypatch.setenv(name, "")  # so that the test's end restores what was there before serve set it
        monkeypatch.delenv(name)

    def fake_run(self, sockets=None):
        seen["config"] = self.config
        seen["address"] = sockets[0].getsockname()
        seen["app"] = self.config.app

    class FakeMultiprocess:
        def __init__(self, config, listeners):
            seen["config"] = config
            seen["address"] = listeners[0].getsockname()
            seen["listeners"] = [(id(s), s.getsockname()) for s in listeners]

        def run(self):
            # what a spawned worker would build, from the environment it inherits
            seen["app"] = serve_cmd.worker_app()

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(supervisor, "ListenerPerWorker", FakeMultiprocess)

    def invoke(*args):
        seen.clear()
        result = CliRunner().invoke(main, ["serve", "--collection", str(root), *args])
        return result, seen

    return invoke


def _middlewares(app) -> set[str]:
    return {m.cls.__name__ for m in app.user_middleware}


def test_binds_loopback_by_default_and_says_so(served):
    result, seen = served("--port", "0", "--workers", "1")
    assert result.exit_code == 0, result.output
    host, port = seen["address"]
    assert host == "127.0.0.1" and port > 0
    assert f"http://127.0.0.1:{port}/" in result.output
    assert "loopback only" in result.output
    assert "token" not in result.output
    # the app it serves is figsearch's, with the default upload limit, in this process
    assert seen["app"].state.figsearch.limits.max_upload_bytes == 20 * 1024 * 1024
    assert _middlewares(seen["app"]) == {"BodyLimit", "HostCheck", "FastHealth"}
    assert "1 worker process(es)" in result.output


def test_beyond_loopback_a_token_is_generated_printed_once_and_required(served):
    result, seen = served("--host", "0.0.0.0", "--port", "0", "--max-upload-mb", "5", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert seen["address"][0] == "0.0.0.0"
    assert "listening on 0.0.0.0" in result.output and "TLS proxy" in result.output
    match = re.search(r"at http://0\.0\.0\.0:\d+/\?token=([A-Za-z0-9_-]{40,})", result.output)
    assert match, result.output
    token = match.group(1)
    assert result.output.count(token) == 1
    app = seen["app"]
    assert app.state.figsearch.limits.max_upload_bytes == 5 * 1024 * 1024
    assert _middlewares(app) == {"BodyLimit", "TokenAuth", "FastHealth"}
    with TestClient(app) as client:
        assert client.get("/api/info").status_code == 401
        assert client.get("/api/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_from_a_file_or_the_environment_is_not_printed(served, tmp_path, monkeypatch):
    chosen = "a-token-the-team-chose-0123456789"
    path = tmp_path / "token"
    path.write_text(chosen + "\n")
    result, seen = served("--host", "0.0.0.0", "--port", "0", "--workers", "1", "--token-file", str(path))
    assert result.exit_code == 0, result.output
    assert chosen not in result.output and f"access token read from {path}" in result.output
    with TestClient(seen["app"], base_url="http://127.0.0.1") as client:
        assert client.get("/api/info", headers={"Authorization": f"Bearer {chosen}"}).status_code == 200

    monkeypatch.setenv(serve_cmd.TOKEN_ENV, chosen)
    result, seen = served("--port", "0", "--workers", "1")  # a token that is set is required on loopback too
    assert result.exit_code == 0, result.output
    assert chosen not in result.output and "read from $FIGSEARCH_TOKEN" in result.output
    with TestClient(seen["app"], base_url="http://127.0.0.1") as client:
        assert client.get("/api/info").status_code == 401
        assert client.get("/api/info", headers={"Authorization": f"Bearer {chosen}"}).status_code == 200


def test_token_flag_requires_one_on_loopback(served):
    result, seen = served("--port", "0", "--workers", "1", "--token")
    assert result.exit_code == 0, result.output
    assert "?token=" in result.output and "TokenAuth" in _middlewares(seen["app"])


def test_a_short_or_unreadable_token_file_is_a_clear_error(served, tmp_path):
    short = tmp_path / "short"
    short.write_text("abc")
    result, _ = served("--host", "0.0.0.0", "--port", "0", "--token-file", str(short))
    assert result.exit_code == 2 and "at least 16" in result.output and "abc" not in result.output
    result, _ = served("--port", "0", "--token-file", str(tmp_path / "none"))
    assert result.exit_code == 2 and "cannot read the token file" in result.output


def test_several_workers_run_the_app_factory_with_the_same_settings(served):
    result, seen = served("--host", "0.0.0.0", "--port", "0", "--workers", "3", "--threads", "5", "--queue", "7",
                          "--token")
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert config.workers == 3 and config.factory and config.app == "figsearch.cli.serve_cmd:worker_app"
    # a listener per worker, all on the one port printed (own sockets where the kernel spreads connections)
    listeners = seen["listeners"]
    assert len(listeners) == 3 and len({address for _, address in listeners}) == 1
    assert len({sock for sock, _ in listeners}) == (3 if serve_cmd.kernel_spreads_connections() else 1)
    assert "3 worker process(es), 5 search thread(s) each, 7 waiting at most" in result.output
    token = re.search(r"\?token=(\S+)", result.output).group(1)
    # the token reaches the workers only as its digest
    assert token not in os.environ[serve_cmd.WORKER_SETTINGS_ENV]
    app = seen["app"]
    state = app.state.figsearch
    assert (state.searches.threads, state.searches.capacity) == (5, 12)
    with TestClient(app) as client:
        assert client.get("/api/info").status_code == 401
        assert client.get("/api/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_default_workers_follow_the_machine(served, monkeypatch):
    monkeypatch.setattr(serve_cmd, "default_workers", lambda: 2)
    result, seen = served("--port", "0")
    assert result.exit_code == 0, result.output
    assert seen["config"].workers == 2 and "2 worker process(es)" in result.output


@pytest.mark.parametrize("cores,workers", [(1, 1), (2, 2), (3, 3), (16, 4)])
def test_default_workers_is_the_cores_at_most_4(monkeypatch, cores, workers):
    import figsearch.server.state as state

    monkeypatch.setattr(state, "machine_cores", lambda: cores)
    assert serve_cmd.default_workers() == workers


def test_worker_app_needs_its_settings(monkeypatch):
    monkeypatch.delenv(serve_cmd.WORKER_SETTINGS_ENV, raising=False)
    with pytest.raises(Exception, match="FIGSEARCH_SERVE_SETTINGS is not set"):
        serve_cmd.worker_app()


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
