"""Fixtures for the web side: an app on the synthetic model and a SQLite database, a client, a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_log import sqlite_url

PASSWORD = "correct horse battery staple"
JWT_SECRET = "a-test-signing-key-that-is-long-enough-for-hs256"


@pytest.fixture
def settings(synthetic_model_dir: Path, tmp_path: Path) -> Settings:
    return Settings(
        model_path=synthetic_model_dir / MODEL_FILE_NAME,
        session_password=PASSWORD,
        jwt_secret_key=JWT_SECRET,
        database_url=sqlite_url(tmp_path / "recommendations.sqlite3"),
    )


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
