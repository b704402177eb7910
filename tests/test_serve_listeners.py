"""``serve --workers N`` gives each worker a listener of its own (``SO_REUSEPORT`` on Linux), so the
kernel spreads new connections over the workers instead of the first worker to wake taking them all."""

from __future__ import annotations

import socket

import pytest

from figsearch.cli.serve_cmd import kernel_spreads_connections, open_listeners

linux_only = pytest.mark.skipif(not kernel_spreads_connections(), reason="SO_REUSEPORT spreads connections on Linux only")


@linux_only
def test_each_worker_gets_its_own_listener_on_one_port():
    listeners = open_listeners("127.0.0.1", 0, 3)
    try:
        assert len({id(s) for s in listeners}) == 3
        assert len({s.getsockname()[1] for s in listeners}) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in listeners)
        # the kernel hands connections to all of them: 60 connections reach more than one listener
        port = listeners[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
        accepted = []
        for listener in listeners:
            listener.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        for client in clients:
            client.close()
        assert sum(accepted) == 60 and sum(1 for c in accepted if c) >= 2, accepted
    finally:
        for s in listeners:
            s.close()


def test_one_worker_has_one_listener():
    listeners = open_listeners("127.0.0.1", 0, 1)
    try:
        assert len(listeners) == 1
    finally:
        listeners[0].close()


def test_a_port_in_use_is_a_clear_error():
    from figsearch.errors import InputError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with pytest.raises(InputError, match="cannot listen on 127.0.0.1"):
            open_listeners("127.0.0.1", taken.getsockname()[1], 2)
    finally:
        taken.close()


class FakeProcess:
    """Stands in for uvicorn's worker process: records the sockets it was given."""

    dead: set[int] = set()

    def __init__(self, config, sockets):
        self.sockets = sockets
        self.exitcode = None
        self.pid = id(self)

    def start(self):
        pass

    def is_alive(self, timeout=5):
        return id(self.sockets[0]) not in FakeProcess.dead

    def ping(self, timeout=5):
        return True

    def wait_until_ready(self, timeout, should_exit=None):
        return True

    def kill(self):
        pass

    def terminate(self):
        pass

    def join(self):
        pass


def test_worker_i_gets_listener_i_at_start_after_a_death_and_on_restart(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    import uvicorn.supervisors.multiprocess as multiprocess

    from figsearch.server.supervisor import ListenerPerWorker

    monkeypatch.setattr(multiprocess, "Process", FakeProcess)
    listeners = [object(), object(), object()]
    supervisor = ListenerPerWorker(uvicorn.Config(lambda: None, workers=3), listeners)
    supervisor.init_processes()
    assert [p.sockets for p in supervisor.processes] == [[listener] for listener in listeners]
    first = list(supervisor.processes)

    FakeProcess.dead = {id(listeners[1])}  # worker 1 died: its replacement serves listener 1
    supervisor.keep_subprocess_alive()
    FakeProcess.dead = set()
    assert supervisor.processes[0] is first[0] and supervisor.processes[2] is first[2]
    assert supervisor.processes[1] is not first[1] and supervisor.processes[1].sockets == [listeners[1]]

    supervisor.restart_all()
    assert [p.sockets for p in supervisor.processes] == [[listener] for listener in listeners]
    assert not any(p in first for p in supervisor.processes)
    assert supervisor.processes_num == 3 and supervisor.sockets == []


def test_a_listener_count_that_does_not_match_the_workers_is_refused():
    uvicorn = pytest.importorskip("uvicorn")
    from figsearch.server.supervisor import ListenerPerWorker

    with pytest.raises(ValueError, match="3 workers need as many listeners"):
        ListenerPerWorker(uvicorn.Config(lambda: None, workers=3), [object()])


@linux_only
def test_a_port_another_server_shares_with_so_reuseport_is_refused():
    """A second ``serve --workers 2`` on the port of a running one must fail, not share its connections."""
    from figsearch.errors import InputError

    first = open_listeners("127.0.0.1", 0, 2)
    try:
        with pytest.raises(InputError, match="cannot listen on 127.0.0.1"):
            open_listeners("127.0.0.1", first[0].getsockname()[1], 2)
    finally:
        for s in first:
            s.close()
