"""An id that is not exactly 32 lowercase hex digits is a 400 naming id, before any other work: never a 500,
never a wait for a recommendation that cannot come (issue 25, item 5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from app import create_app, prepare_database
from app.config import Settings
from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_ids import RecommendationIds
from app.store.recommendation_log import sqlite_url
from tests.conftest import JWT_SECRET, PASSWORD

ODD_IDS = {
    # The four that answered 500.
    "accented tail": "0" * 24 + "é" * 8,
    "accented": "é" * 32,
    "U+D7FF": "\ud7ff" * 32,
    "an Arabic-Indic digit": "0" * 31 + "\u0663",
    # And their neighbours.
    "uppercase hex": "A" * 32,
    "fullwidth digits": "\uff10" * 32,
    "31 digits": "0" * 31,
    "33 digits": "0" * 33,
    "a trailing newline": "0" * 32 + "\n",
    "a NUL": "0" * 31 + "\x00",
    "empty": "",
}


@pytest.fixture(scope="module", params=["database", "journal"])
def app(request: pytest.FixtureRequest, synthetic_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """As main.py serves (straight to the database), and as a stack's worker does (a journal, ids that wait)."""
    directory = tmp_path_factory.mktemp("odd-ids")
    settings = Settings(
        model_path=synthetic_model_dir / MODEL_FILE_NAME,
        session_password=PASSWORD,
        jwt_secret_key=JWT_SECRET,
        database_url=sqlite_url(directory / "recommendations.sqlite3"),
    )
    if request.param == "database":
        return create_app(settings)
    app = create_app(replace(settings, journal_dir=directory / "journal"))
    prepare_database(app)
    return app


@pytest.mark.parametrize("odd_id", ODD_IDS.values(), ids=ODD_IDS.keys())
def test_an_odd_id_is_400_naming_id(app: Flask, odd_id: str, caplog: pytest.LogCaptureFixture) -> None:
    client = app.test_client()
    token = client.post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    body = {"id": odd_id, "movie": "Heat (1995)", "score": 4}
    answer = client.post("/api/recommend/score", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.get_json()["message"].startswith("id: ")
    assert [record for record in caplog.records if record.levelname == "ERROR"] == []


@pytest.mark.parametrize("odd_id", ODD_IDS.values(), ids=ODD_IDS.keys())
def test_an_odd_id_was_never_issued(odd_id: str) -> None:
    assert RecommendationIds(JWT_SECRET).issued_at(odd_id) is None


def test_an_issued_id_says_when() -> None:
    ids = RecommendationIds(JWT_SECRET)
    issued = ids.new()
    assert issued.isascii() and issued == issued.lower() and len(issued) == 32
    assert ids.issued_at(issued) is not None
    assert ids.issued_at(issued[:-1] + ("0" if issued[-1] != "0" else "1")) is None
