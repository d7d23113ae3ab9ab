"""The database going away while the service runs: 503 in JSON, /health says so, and recovery once it is back.

A loopback TCP relay stands between the app and the real PostgreSQL server, so the test can
cut the database off and bring it back without touching the server other tests use.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import make_url

from app import create_app
from app.config import Settings
from app.model.recommender import MODEL_FILE_NAME
from tests.web.api.conftest import JWT_SECRET, PASSWORD

pytestmark = pytest.mark.service


class Relay:
    """Forwards 127.0.0.1:port to a target; cut() drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
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

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that would otherwise hold it open
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self.connections = []


@pytest.fixture
def relay(empty_postgres: str) -> Iterator[Relay]:
    url = make_url(empty_postgres)
    relay = Relay((url.host, url.port or 5432))
    relay.open()
    yield relay
    relay.cut()


@pytest.fixture
def client(synthetic_model_dir: Path, empty_postgres: str, relay: Relay) -> Iterator[FlaskClient]:
    through_relay = make_url(empty_postgres).set(port=relay.port).render_as_string(hide_password=False)
    settings = Settings(
        model_path=synthetic_model_dir / MODEL_FILE_NAME,
        session_password=PASSWORD,
        jwt_secret_key=JWT_SECRET,
        database_url=through_relay,
    )
    app = create_app(settings)
    yield app.test_client()
    app.extensions["recommendation_log"].engine.dispose()


def test_a_database_that_goes_away_is_503_and_the_service_recovers(client: FlaskClient, relay: Relay) -> None:
    token = client.post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    asked = {"age": 30, "gender": "F", "occupation": "writer"}
    assert client.post("/api/recommend", json=asked, headers=headers).status_code == 200

    relay.cut()
    down = client.post("/api/recommend", json=asked, headers=headers)
    assert down.status_code == 503
    assert down.get_json() == {"message": "the database is unavailable; try again shortly"}
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["database"] == "unavailable"

    relay.open()
    assert client.post("/api/recommend", json=asked, headers=headers).status_code == 200
    assert client.get("/health").status_code == 200
