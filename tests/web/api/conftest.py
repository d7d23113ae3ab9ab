"""Fixtures for the web side: an app on the synthetic model and a SQLite database (tests/conftest.py's settings),
a client, a token."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from tests.conftest import PASSWORD


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth_headers(client: FlaskClient) -> dict[str, str]:
    response = client.post("/api/login", json={"session_password": PASSWORD})
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}
