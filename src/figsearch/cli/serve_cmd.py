"""CLI commands of the serve stage (see figsearch.cli): ``figsearch serve``."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import os
import socket
import sys
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


def open_listener(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """Bind before starting the server, so the message can name the real port (``--port 0``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def kernel_spreads_connections() -> bool:
    """Whether listeners sharing a port with ``SO_REUSEPORT`` get their connections spread by the
    kernel (by a hash of the client's address and port): Linux does; elsewhere the option exists
    with other meanings, so the workers share one listener there."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def open_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per worker process, all on the same address.

    With one shared listener, the worker whose loop wakes first accepts every connection waiting at
    that moment, so clients that connect together can all land on one worker (seen in a load test: 20
    clients on one worker for the whole run, docs/serving.md). With a listener each, bound with
    ``SO_REUSEPORT``, the kernel hands each new connection to one listener by its addresses: no race.
    Where the kernel does not spread them, one shared listener (``count`` copies of it)."""
    if count == 1 or not kernel_spreads_connections():
        sock = open_listener(host, port)
        return [sock] * count
    # first a plain listener: a port another server holds, even one listening with SO_REUSEPORT itself
    # (a second `figsearch serve` on the same port), is refused, instead of the two sharing its connections
    probe = open_listener(host, port)
    bound_port = probe.getsockname()[1]  # --port 0: the listeners take the port the probe got
    probe.close()
    listeners = []
    try:
        for _ in range(count):
            listeners.append(open_listener(host, bound_port, reuse_port=True))
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


def load_backend(collection: Path):
    """The one search service the CLI, the API and the evaluation share."""
    try:
        from figsearch.search.service import SearchService
    except ModuleNotFoundError as exc:
        if exc.name != "figsearch.search.service":
            raise
        raise FigsearchError("this figsearch has no search service (figsearch.search.service is missing)") from exc
    return SearchService.open(collection)


#: environment variable that carries the settings to worker processes (never the token itself)
WORKER_SETTINGS_ENV = "FIGSEARCH_SERVE_SETTINGS"
#: environment variable an access token may be read from
TOKEN_ENV = "FIGSEARCH_TOKEN"


def default_workers() -> int:
    from figsearch.server.state import machine_cores

    return min(machine_cores(), 4)


def resolve_token(host: str, required: bool, token_file: str | None) -> tuple[str | None, str]:
    """The access token and where it came from; None on loopback unless one is asked for or set.

    Beyond loopback a token is always required: from ``--token-file``, else $FIGSEARCH_TOKEN,
    else a new one.
    """
    from figsearch.server.auth import check_token, new_token

    if token_file:
        try:
            text = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the token file {token_file}: {exc}") from exc
        source = f"read from {token_file}"
    elif os.environ.get(TOKEN_ENV):
        text, source = os.environ[TOKEN_ENV], f"read from ${TOKEN_ENV}"
    elif required or not is_loopback(host):
        return new_token(), "generated"
    else:
        return None, "none"
    try:
        return check_token(text), source
    except ValueError as exc:
        raise InputError(f"{exc} (token {source})") from exc


def build_app(settings: dict):
    """The app one server process runs, from the settings ``serve`` worked out (JSON-able, so
    that worker processes get them through the environment)."""
    from figsearch.server.app import create_app
    from figsearch.server.uploads import Limits

    root = Path(settings["collection"])
    digest = settings.get("token_sha256")
    return create_app(
        load_backend(root),
        root,
        limits=Limits(max_upload_bytes=settings["max_upload_bytes"]),
        threads=settings["threads"],
        queue=settings["queue"],
        allowed_hosts=settings.get("allowed_hosts"),
        token_digest=bytes.fromhex(digest) if digest else None,
    )


def worker_app():
    """The app factory each worker process of ``serve --workers N`` calls (uvicorn ``factory=True``)."""
    raw = os.environ.get(WORKER_SETTINGS_ENV)
    if not raw:
        raise FigsearchError(f"${WORKER_SETTINGS_ENV} is not set: worker_app is started by figsearch serve --workers")
    from figsearch.server.supervisor import watch_parent

    watch_parent()  # a supervisor killed outright takes its workers with it, the port too
    return build_app(json.loads(raw))


@main.command("serve")
@collection_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default is reachable from this machine only; any other "
                   "address requires an access token.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--max-upload-mb", default=20, show_default=True, type=click.IntRange(1, 1024),
              help="Largest accepted upload, in MiB.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes, each with the collection open read-only and its own encoders "
                   "[default: the machine's cores, at most 4]. 1 serves in this process.")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="Backend calls run at once in each process, per pool [default: cores / workers, at least 1].")
@click.option("--queue", type=click.IntRange(0, 100_000), default=None,
              help="Searches that may wait in each process beyond the running ones; past that the server "
                   "answers 503 with Retry-After [default: 32].")
@click.option("--token", "require_token", is_flag=True,
              help="Require the access token on loopback too (beyond loopback it is always required).")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help=f"Read the access token from this file (else ${TOKEN_ENV}, else a new one is generated "
                   "and printed).")
def serve(collection: str, host: str, port: int, max_upload_mb: int, workers: int | None, threads: int | None,
          queue: int | None, require_token: bool, token_file: str | None) -> None:
    """Serve the web page and the HTTP API (OpenAPI at /docs) for a collection."""
    from figsearch.extras import require

    require("fastapi", "the web server")
    uvicorn = require("uvicorn", "the web server")
    if importlib.util.find_spec("python_multipart") is None and importlib.util.find_spec("multipart") is None:
        raise MissingDependency(
            "python-multipart is needed for uploads but is not installed; install it with: "
            "pip install 'figsearch[server]'"
        )
    from figsearch.server.app import LOOPBACK_HOSTS
    from figsearch.server.auth import token_digest
    from figsearch.server.state import DEFAULT_QUEUE, default_threads
    from figsearch.server.protocol import http_protocol
    from figsearch.store import Collection

    from figsearch.cli.info_cmd import for_shell
    from figsearch.pipeline.upgrade import upgrade_advice

    root = Path(collection).absolute()
    with Collection.open(root) as store:  # a missing or foreign collection fails here, with its own message
        advice = upgrade_advice(store)
    token, token_source = resolve_token(host, require_token, token_file)
    workers = workers or default_workers()
    settings = {
        "collection": str(root),
        "max_upload_bytes": max_upload_mb * 1024 * 1024,
        "threads": threads or default_threads(workers),
        "queue": DEFAULT_QUEUE if queue is None else queue,
        # on loopback, only this machine's own names: a rebound foreign name is refused
        "allowed_hosts": LOOPBACK_HOSTS if is_loopback(host) else None,
        "token_sha256": token_digest(token).hex() if token else None,
    }
    app = build_app(settings) if workers == 1 else None
    listeners = open_listeners(host, port, workers)
    bound_port = listeners[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/"
    # like Jupyter: a generated token is shown once, in the URL to open; one the user chose is not
    opened = f"{url}?token={token}" if token and token_source == "generated" else url
    if is_loopback(host):
        click.echo(f"figsearch: serving {root} at {opened} (loopback only: reachable from this machine alone; "
                   "use --host to listen elsewhere)")
    else:
        click.echo(f"figsearch: serving {root} at {opened}")
        click.echo(f"figsearch: listening on {host}, so other machines can reach this collection with the token; "
                   "it travels in clear over plain HTTP: use a TLS proxy across untrusted networks", err=True)
    if token:
        click.echo(f"figsearch: access token {token_source}; API clients send 'Authorization: Bearer <token>'")
    click.echo(f"figsearch: {workers} worker process(es), {settings['threads']} search thread(s) each, "
               f"{settings['queue']} waiting at most")
    click.echo(f"figsearch: API reference at {url}docs; press Ctrl+C to stop")
    for item in advice:  # an older collection: what it lacks against today's defaults (also in /api/info)
        click.echo(f"figsearch: upgrade: {item.what}: {for_shell(item.command, collection)}", err=True)
    if advice:
        click.echo("figsearch: (these commands may run while this server serves: searches go on, and pick up the "
                   "new indexes by themselves)", err=True)
    verbose = logging.getLogger().level <= logging.INFO
    # a worker busy with searches on a loaded machine may take seconds to answer the supervisor's
    # ping; uvicorn's 5 s default then kills it as hung, dropping its connections
    log_options = dict(log_level="info" if verbose else "warning", access_log=verbose, timeout_graceful_shutdown=5,
                       timeout_worker_healthcheck=60, http=http_protocol())
    try:
        if workers == 1:
            uvicorn.Server(uvicorn.Config(app, **log_options)).run(sockets=listeners)
        else:
            from figsearch.server.supervisor import ListenerPerWorker

            # spawned workers inherit the environment: the settings travel there (the token only as a digest)
            os.environ[WORKER_SETTINGS_ENV] = json.dumps(settings)
            config = uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers, **log_options)
            ListenerPerWorker(config, listeners).run()
    finally:
        for sock in set(listeners):
            sock.close()
