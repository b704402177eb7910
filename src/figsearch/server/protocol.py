"""uvicorn's HTTP protocol (httptools), with ``GET /api/health`` answered in the connection's read callback.

uvicorn parses a request in the read callback of its connection and starts a task for it; the task
runs on a later turn of the event loop, after every callback and task step queued before it. Under
100 clients a worker's loop had bursts of queued requests (uploads' bodies read, answers written):
in the lead's idle run of stop 18 a probe waited 228 ms while the answering worker's loop lagged
173 ms, 92 ms of it the loop's own CPU. ``HealthFirstProtocol`` answers a health probe at once, in the
read callback, from ``HealthAnswer`` (the same answer FastHealth gives, through uvicorn's own ``send``:
the same bytes, headers, access log and keep-alive handling), so a probe waits for no queued request.

Every other request, a probe with a foreign Host header (refused by the host check), and a probe
whose connection cannot take the answer at once (its writes are paused) take the usual task path.
``figsearch serve`` runs uvicorn with this protocol when httptools is installed (the ``server`` extra)."""

from __future__ import annotations

import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = logging.getLogger(__name__)

#: how many ``.app`` layers to look through for the figsearch app (uvicorn's middlewares wrap it)
_MAX_DEPTH = 8


def health_answer_of(app):
    """The ``HealthAnswer`` of the figsearch app inside ``app`` (uvicorn's wrappers around it), or None."""
    for _ in range(_MAX_DEPTH):
        if app is None:
            return None
        state = getattr(getattr(app, "state", None), "figsearch", None)
        if state is not None:
            return getattr(state, "health_answer", None)
        app = getattr(app, "app", None)
    return None


def _done_now(coroutine) -> bool:
    """Runs ``coroutine`` to its end if it never waits (uvicorn's ``send`` waits only while the
    connection's writes are paused); False (and closed) if it would have waited."""
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    coroutine.close()
    return False


class HealthFirstProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers health probes without a task (module docstring)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app) -> None:
        if self._answer_health(cycle):
            return
        super()._start_asgi_task(cycle, app)

    def _answer_health(self, cycle: RequestResponseCycle) -> bool:
        answer = health_answer_of(self.app)
        if (answer is None or not answer.wanted(cycle.scope) or self.flow.write_paused or cycle.disconnected
                or cycle.response_started):
            return False
        start, body = answer.messages()
        if _done_now(cycle.send(start)) and _done_now(cycle.send(body)):
            return True
        # cannot happen while writes are not paused (checked above); never leave the probe unanswered
        log.warning("health probe answer could not be written at once; closing its connection")
        self.transport.close()
        return True


def http_protocol():
    """The HTTP protocol for uvicorn's ``Config(http=...)``: HealthFirstProtocol where httptools is installed,
    else uvicorn's own choice."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "auto"
    # a uvicorn that starts its tasks elsewhere would never call the override: its own protocol, as before
    return HealthFirstProtocol if hasattr(HttpToolsProtocol, "_start_asgi_task") else "auto"
