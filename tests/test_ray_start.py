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


def test_the_raylets_agents_are_replaced_by_the_stand_in_with_their_options():
    # stop 25: the raylet's command line names each agent's command; the stand-in gets the same
    # options (the node id and the session folder it writes the ports into) and its role
    import shlex
    import subprocess
    import sys

    dashboard = [sys.executable, "-u", "/ray/dashboard/agent.py", "--node-id=abc", "--session-dir=/s",
                 "--listen-port=52365", "--logging-format=%(asctime)s %(message)s"]
    runtime_env = [sys.executable, "-u", "/ray/_private/runtime_env/agent/main.py", "--node-id=abc",
                   "--session-dir=/s", "--runtime-env-agent-port=0"]
    other = [sys.executable, "/elsewhere/their_agent_runner.py", "--node-id=abc"]
    command = ["/ray/raylet", "--node_id=abc",
               "--dashboard_agent_command=" + subprocess.list2cmdline(dashboard),
               "--runtime_env_agent_command=" + subprocess.list2cmdline(runtime_env)]
    out = distributed._with_agent_standins(command)
    assert out[:2] == command[:2]
    script = str(distributed.Path(distributed.__file__).with_name("ray_agent_standin.py"))
    assert shlex.split(out[2].split("=", 1)[1]) == [sys.executable, "-S", script, "dashboard", *dashboard[3:]]
    assert shlex.split(out[3].split("=", 1)[1]) == [sys.executable, "-S", script, "runtime_env", *runtime_env[3:]]
    # a command that does not run Ray's agent scripts (another Ray) is left as it is
    unknown = "--dashboard_agent_command=" + subprocess.list2cmdline(other)
    assert distributed._with_agent_standins([unknown]) == [unknown]


def test_the_stand_in_writes_the_ports_refuses_requests_and_ends_with_its_parent(tmp_path):
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(distributed.__file__).with_name("ray_agent_standin.py")
    # a parent that starts both stand-ins as the raylet does, prints their ids and stays until killed
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"common = ['--node-id=abc', '--session-dir={tmp_path}', '--node-ip-address=127.0.0.1']\n"
        f"kids = [subprocess.Popen([sys.executable, '-S', {str(script)!r}, role, *common]) "
        "for role in ('dashboard', 'runtime_env')]\n"
        "print(*[k.pid for k in kids], flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        kids = [int(pid) for pid in parent.stdout.readline().split()]
        ports = {name: tmp_path / f"{name}_abc" for name in (
            "metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")}
        deadline = time.monotonic() + 20
        while not all(p.exists() for p in ports.values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        values = {name: int(path.read_text()) for name, path in ports.items()}
        # a minimal Ray's dashboard agent serves none of its ports (-1); the runtime-environment
        # agent's port answers, with an error saying why, so that a request does not hang
        dashboard = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")
        assert [values[n] for n in dashboard] == [-1] * 3
        with socket.create_connection(("127.0.0.1", values["runtime_env_agent_port"]), timeout=5) as connection:
            connection.sendall(b"POST /get_or_create_runtime_env HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            answer = connection.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503") and b"runtime-environment agent" in answer
        assert not list(tmp_path.glob("*.tmp"))
    finally:
        parent.kill()
        parent.wait()
    # the raylet killed outright: its stand-ins notice and end
    def alive(pid: int) -> bool:
        try:  # a zombie (ended, not reaped yet by whoever adopted it) counts as ended
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in kids)
