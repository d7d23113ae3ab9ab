"""The API during an experiment: each unit's arm answers, the log records it, /metrics counts per arm."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app, prepare_database
from app.config import Settings
from app.experiment.arms import CANDIDATE, CONTROL, STATE_FILE_NAME, in_candidate_arm
from app.experiment.publication import publish, published_state
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.experiments import PROMOTED, end_experiment, latest_experiment
from app.store.tables import recommendations
from tests.conftest import PASSWORD
from tests.experiment.test_arms import start

PERSON = {"age": 40, "gender": "M", "occupation": "engineer"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The web side's settings, with the directory a mule publishes experiments to."""
    return replace(settings, experiment_dir=tmp_path / "experiment")


@pytest.fixture
def app(settings: Settings, synthetic_candidate_dir: Path) -> Iterator[Flask]:
    """The service during experiment 1 (half the traffic to the candidate), as its mule published it."""
    app = create_app(settings)
    engine = app.extensions["recommendation_log"].engine
    start(engine, synthetic_candidate_dir, app.extensions["arms"].control)
    publish(engine, settings.experiment_dir)
    app.extensions["arms"].follow()  # what the worker's thread does within FOLLOW_INTERVAL_SECONDS
    yield app
    engine.dispose()


@pytest.fixture
def headers(app: Flask) -> dict[str, str]:
    token = app.test_client().post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def ask(api: FlaskClient, headers: dict, **fields: str) -> dict:
    answer = api.post("/api/recommend", json={**PERSON, **fields}, headers=headers)
    assert answer.status_code == 200
    return answer.get_json()


def test_each_unit_gets_its_arms_model_and_the_log_records_the_arm(
    app: Flask, headers: dict, synthetic_candidate_dir: Path
) -> None:
    client = app.test_client()
    control = app.extensions["arms"].control
    candidate = Recommender.load(synthetic_candidate_dir / MODEL_FILE_NAME)
    keys = [f"person-{number}" for number in range(40)]
    answers = {key: ask(client, headers, client=key) for key in keys}
    for key, answer in answers.items():
        expected = candidate if in_candidate_arm(1, key, 0.5) else control
        assert set(answer) == {"recommendations", "id"}
        assert answer["recommendations"] == expected.recommend(**PERSON)
        assert ask(client, headers, client=key)["recommendations"] == answer["recommendations"]  # stays in its arm
    with app.extensions["recommendation_log"].engine.connect() as connection:
        rows = connection.execute(select(recommendations)).mappings().all()
    for row in rows:
        arm = CANDIDATE if in_candidate_arm(1, row["client"], 0.5) else CONTROL
        assert (row["experiment_id"], row["arm"]) == (1, arm)
        assert row["model_version"] == (candidate if arm == CANDIDATE else control).version


def test_without_a_client_key_the_recommendation_is_the_unit(app: Flask, headers: dict) -> None:
    client = app.test_client()
    ids = [ask(client, headers)["id"] for _ in range(60)]
    with app.extensions["recommendation_log"].engine.connect() as connection:
        arms = dict(connection.execute(select(recommendations.c.id, recommendations.c.arm)).all())
    assert [arms[given] for given in ids] == [
        CANDIDATE if in_candidate_arm(1, given, 0.5) else CONTROL for given in ids
    ]


def counted(api: FlaskClient, metric: str, arm: str) -> float:
    found = re.search(rf'^{metric}{{arm="{arm}"}} (\S+)$', api.get("/metrics").get_data(as_text=True), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_recommendations_and_scores_per_arm(app: Flask, headers: dict) -> None:
    client = app.test_client()
    metrics = [
        (metric, arm)
        for metric in ("recommendations_served_total", "scores_recorded_total")
        for arm in (CONTROL, CANDIDATE)
    ]
    before = {key: counted(client, *key) for key in metrics}  # one registry for every app of this process
    arms = []
    for number in range(30):
        answer = ask(client, headers, client=f"person-{number}")
        arms.append(CANDIDATE if in_candidate_arm(1, f"person-{number}", 0.5) else CONTROL)
        score = {"id": answer["id"], "movie": answer["recommendations"][0], "score": 4}
        assert client.post("/api/recommend/score", json=score, headers=headers).status_code == 200
    assert {key: counted(client, *key) - before[key] for key in metrics} == {
        (metric, arm): arms.count(arm) for metric, arm in metrics
    }


def test_a_replica_started_after_a_promotion_on_a_fresh_volume_serves_the_candidate(
    app: Flask, settings: Settings, synthetic_candidate_dir: Path, tmp_path: Path
) -> None:
    """A redeploy: a new instance folder, so nothing published yet; the stack's start publishes the record."""
    engine = app.extensions["recommendation_log"].engine
    end_experiment(engine, 1, PROMOTED, "promoted by a test")
    redeployed = replace(settings, experiment_dir=tmp_path / "fresh-volume", journal_dir=tmp_path / "journal")
    fresh = create_app(redeployed)
    assert fresh.extensions["arms"].serving().version == fresh.extensions["arms"].control.version  # nothing yet
    prepare_database(fresh)  # what deploy/preflight.py does before the workers start
    worker = create_app(redeployed)
    candidate = Recommender.load(synthetic_candidate_dir / MODEL_FILE_NAME).version
    assert worker.test_client().get("/health").get_json()["model_version"] == candidate
    for replica in (fresh, worker):
        replica.extensions["recommendation_log"].engine.dispose()


def tear(directory: Path, torn: str) -> None:
    """What a power cut can leave of a file that was written without fsync before its rename."""
    if torn == "truncated candidate":
        (model,) = (directory / "candidates").glob(f"*/{MODEL_FILE_NAME}")
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    else:
        state_file = directory / STATE_FILE_NAME
        state_file.write_text("" if torn == "empty state" else state_file.read_text()[:30])


@pytest.mark.parametrize("torn", ["empty state", "truncated state", "truncated candidate"])
def test_after_a_power_cut_tore_a_file_workers_start_on_the_control_and_the_next_publication_mends_it(
    app: Flask, settings: Settings, headers: dict, synthetic_candidate_dir: Path, tmp_path: Path, torn: str
) -> None:
    engine = app.extensions["recommendation_log"].engine
    tear(settings.experiment_dir, torn)
    stack = replace(settings, journal_dir=tmp_path / "journal")  # a stack's worker asks the database nothing
    worker = create_app(stack)
    control = worker.extensions["arms"].control
    keys = [f"person-{number}" for number in range(20)]
    assert {tuple(ask(worker.test_client(), headers, client=key)["recommendations"]) for key in keys} == {
        tuple(control.recommend(**PERSON))
    }
    prepare_database(create_app(stack))  # deploy/preflight.py publishes, and mends
    candidate = Recommender.load(synthetic_candidate_dir / MODEL_FILE_NAME)
    assert json.loads((settings.experiment_dir / STATE_FILE_NAME).read_text()) == published_state(
        latest_experiment(engine)
    )
    assert Recommender.load(settings.experiment_dir / "candidates" / candidate.version / MODEL_FILE_NAME).version == (
        candidate.version
    )
    worker.extensions["arms"].follow()
    for key in keys:
        expected = candidate if in_candidate_arm(1, key, 0.5) else control
        assert ask(worker.test_client(), headers, client=key)["recommendations"] == expected.recommend(**PERSON)
    worker.extensions["recommendation_log"].engine.dispose()
