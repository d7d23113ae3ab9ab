"""The database going away while the service runs: 503 in JSON, /health says so, and recovery once it is back.

PostgreSQL is reached through a loopback relay (tests/relay.py) that the tests cut and reopen.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app, prepare_database
from app.config import ConfigError, Settings
from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_log import recommendations
from tests.conftest import JWT_SECRET, PASSWORD
from tests.relay import Relay, relayed_url

pytestmark = pytest.mark.service


@pytest.fixture
def settings(synthetic_model_dir: Path, empty_postgres: str, relay: Relay) -> Settings:
    return Settings(
        model_path=synthetic_model_dir / MODEL_FILE_NAME,
        session_password=PASSWORD,
        jwt_secret_key=JWT_SECRET,
        database_url=relayed_url(empty_postgres, relay),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
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


def test_with_a_journal_a_worker_starts_and_recommends_without_the_database(
    settings: Settings, relay: Relay, tmp_path: Path
) -> None:
    """A stack's worker (uwsgi replaces them: recycled, swapped, killed) asks the database nothing to start."""
    relay.cut()
    app = create_app(replace(settings, journal_dir=tmp_path / "journal"))
    client = app.test_client()
    token = client.post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    asked = {"age": 30, "gender": "F", "occupation": "writer"}
    answer = client.post("/api/recommend", json=asked, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    relay.open()
    prepare_database(app)  # what a stack's start does: the tables, then the journal copied in
    app.extensions["recommendation_log"].drain_journal()
    engine = app.extensions["recommendation_log"].engine
    with engine.connect() as connection:
        stored = connection.execute(select(recommendations.c.id)).scalars().all()
    engine.dispose()
    assert stored == [answer.get_json()["id"]]


def test_without_a_journal_a_server_does_not_start_without_the_database(settings: Settings, relay: Relay) -> None:
    relay.cut()
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: cannot use the database \("):
        create_app(settings)


def test_a_stack_start_without_the_database_stops_with_one_line(
    settings: Settings, relay: Relay, tmp_path: Path
) -> None:
    app = create_app(replace(settings, journal_dir=tmp_path / "journal"))
    relay.cut()
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: cannot use the database \("):
        prepare_database(app)
