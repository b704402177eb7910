"""CLI commands of the serve stage (see figsearch.cli): ``figsearch serve``."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import socket
from pathlib import Path

import click

from figsearch.cli.base import collection_option, main
from figsearch.errors import FigsearchError, InputError, MissingDependency


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def open_listener(host: str, port: int) -> socket.socket:
    """Bind before starting the server, so the message can name the real port (``--port 0``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def load_backend(collection: Path):
    """The one search service the CLI, the API and the evaluation share."""
    try:
        from figsearch.search.service import SearchService
    except ModuleNotFoundError as exc:
        if exc.name != "figsearch.search.service":
            raise
        raise FigsearchError("this figsearch has no search service (figsearch.search.service is missing)") from exc
    return SearchService.open(collection)


@main.command("serve")
@collection_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default is reachable from this machine only.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--max-upload-mb", default=20, show_default=True, type=click.IntRange(1, 1024),
              help="Largest accepted upload, in MiB.")
def serve(collection: str, host: str, port: int, max_upload_mb: int) -> None:
    """Serve the web page and the HTTP API (OpenAPI at /docs) for a collection."""
    from figsearch.extras import require

    require("fastapi", "the web server")
    uvicorn = require("uvicorn", "the web server")
    if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
        raise MissingDependency(
            "python-multipart is needed for uploads but is not installed; install it with: "
            "pip install 'figsearch[server]'"
        )
    from figsearch.server.app import LOOPBACK_HOSTS, create_app
    from figsearch.server.uploads import Limits
    from figsearch.store import Collection

    root = Path(collection)
    Collection.open(root).close()  # a missing or foreign collection fails here, with its own message
    backend = load_backend(root)
    app = create_app(
        backend,
        root,
        limits=Limits(max_upload_bytes=max_upload_mb * 1024 * 1024),
        # on loopback, only this machine's own names: a rebound foreign name is refused
        allowed_hosts=LOOPBACK_HOSTS if is_loopback(host) else None,
    )
    sock = open_listener(host, port)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    if is_loopback(host):
        click.echo(f"figsearch: serving {root} at {url} (loopback only: reachable from this machine alone; "
                   "use --host to listen elsewhere)")
    else:
        click.echo(f"figsearch: serving {root} at {url}")
        click.echo(f"figsearch: warning: listening on {host}, so other machines can reach this collection; "
                   "figsearch has no authentication: put it behind a proxy that has", err=True)
    click.echo(f"figsearch: API reference at {url}docs; press Ctrl+C to stop")
    verbose = logging.getLogger().level <= logging.INFO
    config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
