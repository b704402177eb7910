"""A stand-in for the two agents that Ray's raylet starts, on the instance ``--ray local`` starts here.

    python -S ray_agent_standin.py dashboard|runtime_env --node-id=... --session-dir=... [Ray's other options]

The raylet starts a dashboard agent and a runtime-environment agent, each a Python process that
imports Ray (0.6 to 0.7 CPU s each on the development machine, nearly all of it at the start, when
the build waits for Ray), and registers its node only once both have written their ports into the
session folder. An instance that lives for one build uses neither: Ray's dashboard is off, metrics
are off (``LOCAL_SYSTEM_CONFIG``), and no call of the build has a runtime environment. This script
writes the ports the real agents of a minimal Ray (``pip install ray``, no dashboard) write, -1 for
the dashboard agent's, a listening port for the runtime-environment agent's, and waits until the
raylet ends. A request to that port (a runtime environment asked for after all) is answered with an
error that says why, rather than left hanging. It imports nothing but the standard library, and runs
with ``-S``: it is up in a few hundredths of a second (``distributed._with_agent_standins`` puts it
in the raylet's command line; docs/cluster.md, "Stop 25").
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time

#: the port files each agent writes (Ray 2.60's names: ``ray._raylet``'s ``*_PORT_NAME``), and what
#: a minimal Ray's dashboard agent writes in them: -1, "not served"
DASHBOARD_PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")
RUNTIME_ENV_PORT = "runtime_env_agent_port"
#: how often the stand-in looks whether the raylet (its parent) is still there
PARENT_POLL_S = 0.5
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n%s")
REASON = (b"figsearch's --ray local instance runs without Ray's runtime-environment agent: "
          b"join a cluster started with 'ray start' for runtime environments")


def option(args: list[str], name: str) -> str | None:
    """The value of ``--name=value`` among ``args`` (None when absent)."""
    prefix = f"--{name}="
    return next((a[len(prefix):] for a in args if a.startswith(prefix)), None)


def persist_port(session_dir: str, node_id: str, name: str, port: int) -> None:
    """Write ``port`` where the raylet looks for it (Ray's ``persist_port``: ``NAME_NODEID`` in the
    session folder), whole: written aside, then renamed."""
    path = os.path.join(session_dir, f"{name}_{node_id}")
    aside = f"{path}.{os.getpid()}.tmp"
    with open(aside, "w") as out:
        out.write(str(port))
    os.replace(aside, path)


def _refuse(server: socket.socket) -> None:
    while True:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(2)
            try:
                connection.recv(65536)
                connection.sendall(REFUSAL % (len(REASON), REASON))
            except OSError:
                pass


def serve(role: str, args: list[str]) -> socket.socket | None:
    """Write the ports of ``role`` ("dashboard" or "runtime_env"); for the runtime-environment agent,
    listen on its port (the raylet would otherwise find nothing there) and refuse every request."""
    session_dir, node_id = option(args, "session-dir"), option(args, "node-id")
    if not session_dir or not node_id:
        sys.exit(f"ray_agent_standin: --session-dir and --node-id are needed, got {args}")
    if role == "dashboard":
        for name in DASHBOARD_PORTS:
            persist_port(session_dir, node_id, name, -1)
        return None
    if role != "runtime_env":
        sys.exit(f"ray_agent_standin: unknown agent {role!r} (dashboard or runtime_env)")
    host = option(args, "node-ip-address") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    wanted = option(args, "runtime-env-agent-port") or "0"
    server.bind((host, int(wanted) if wanted.isdigit() else 0))
    server.listen(16)
    persist_port(session_dir, node_id, RUNTIME_ENV_PORT, server.getsockname()[1])
    threading.Thread(target=_refuse, args=(server,), daemon=True).start()
    return server


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: ray_agent_standin.py dashboard|runtime_env --node-id=... --session-dir=...")
    parent = os.getppid()
    serve(argv[0], argv[1:])
    # the raylet stops its agents when it ends; if it is killed outright, this one notices it is gone
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)


if __name__ == "__main__":
    main(sys.argv[1:])
