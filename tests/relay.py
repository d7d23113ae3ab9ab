"""A loopback TCP relay in front of a real server (PostgreSQL, Redis), so that a test can cut it off and bring
it back, or put it a network's distance away, without touching the server other tests use."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from sqlalchemy import make_url


class Relay:
    """Forwards 127.0.0.1:port to a target, each chunk `delay` seconds late; cut() drops every connection and
    refuses new ones."""

    def __init__(self, target: tuple[str, int], delay: float = 0.0) -> None:
        self.target = target
        self.delay = delay
        self.port = 0
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def open(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.port = self.listener.getsockname()[1]
        self.listener.listen()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self.listener is None:  # cut already
            return
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that would otherwise hold it open
        self.listener.close()
        self.listener = None
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections = []


def relayed_url(database_url: str, relay: Relay) -> str:
    """The database URL, through the relay."""
    return make_url(database_url).set(port=relay.port).render_as_string(hide_password=False)
