"""python -m app.experiment as an operator runs it: with the service's settings, against its database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.store.recommendation_log import sqlite_url
from app.store.tables import experiments
from tests.experiment.candidates import reversed_candidate
from tests.servers import PASSWORD, ROOT, SECRET, service_environ


@pytest.fixture
def database(tmp_path: Path) -> str:
    return sqlite_url(tmp_path / "service.sqlite3")


def experiment(database: str, synthetic_model_dir: Path, *arguments: object) -> subprocess.CompletedProcess:
    model = str(synthetic_model_dir / MODEL_FILE_NAME)
    environ = service_environ(
        ML_MODEL_PATH=model, DATABASE_URL=database, SESSION_PASSWORD=PASSWORD, JWT_SECRET_KEY=SECRET
    )
    return subprocess.run(
        [sys.executable, "-m", "app.experiment", *map(str, arguments)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def said(result: subprocess.CompletedProcess) -> str:
    """The command's last line on standard error (the service's start-up log comes before it)."""
    return result.stderr.strip().splitlines()[-1]


def recorded(database: str) -> list[dict]:
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(select(experiments.c.id, experiments.c.state, experiments.c.share)).mappings().all()
    engine.dispose()
    return [dict(row) for row in rows]


def test_start_stop_and_promote_are_recorded(
    database: str, synthetic_model_dir: Path, synthetic_candidate_dir: Path
) -> None:
    candidate = synthetic_candidate_dir / MODEL_FILE_NAME
    started = experiment(database, synthetic_model_dir, "start", candidate, "--share", 0.3)
    assert started.returncode == 0, started.stderr
    assert started.stdout.startswith("experiment 1 started: candidate ")
    assert recorded(database) == [{"id": 1, "state": "running", "share": 0.3}]

    again = experiment(database, synthetic_model_dir, "start", candidate)
    assert again.returncode == 1
    assert said(again) == "experiment: experiment 1 is running: stop or promote it first"

    stopped = experiment(database, synthetic_model_dir, "stop")
    assert (stopped.returncode, stopped.stdout.strip()) == (0, "experiment 1 stopped: every replica follows within 5 s")
    nothing = experiment(database, synthetic_model_dir, "promote")
    assert (nothing.returncode, said(nothing)) == (1, "experiment: no experiment is running")

    assert experiment(database, synthetic_model_dir, "start", candidate).returncode == 0
    undecided = experiment(database, synthetic_model_dir, "promote")
    assert (undecided.returncode, said(undecided)) == (
        1,
        "experiment: experiment 2's verdict is undecided, not better: nothing changed "
        "(promote --force promotes it all the same)",
    )
    assert [row["state"] for row in recorded(database)] == ["stopped", "running"]
    promoted = experiment(database, synthetic_model_dir, "promote", "--force")
    assert (
        promoted.stdout.strip()
        == "experiment 2 promoted, verdict undecided (--force): every replica follows within 5 s"
    )
    assert [row["state"] for row in recorded(database)] == ["stopped", "promoted"]

    rolled_back = experiment(database, synthetic_model_dir, "rollback")
    assert (rolled_back.returncode, rolled_back.stdout.split(":")[0]) == (0, "experiment 2 rolled back"), rolled_back
    assert [row["state"] for row in recorded(database)] == ["stopped", "rolled_back"]
    again = experiment(database, synthetic_model_dir, "rollback")
    assert again.returncode == 1
    assert said(again) == "experiment: no experiment is promoted: there is nothing to roll back"


def test_after_a_promotion_the_next_start_waits_for_the_promoted_model_to_be_served(
    database: str, synthetic_model_dir: Path, synthetic_candidate_dir: Path
) -> None:
    candidate = synthetic_candidate_dir / MODEL_FILE_NAME
    experiment(database, synthetic_model_dir, "start", candidate)
    experiment(database, synthetic_model_dir, "promote", "--force")
    refused = experiment(database, synthetic_model_dir, "start", candidate)
    assert refused.returncode == 1
    assert said(refused).startswith("experiment: experiment 1 promoted model ")
    assert "serve it as ML_MODEL_PATH" in said(refused)
    served_now = experiment(database, synthetic_candidate_dir, "start", synthetic_model_dir / MODEL_FILE_NAME)
    assert served_now.returncode == 0, served_now.stderr


def broken_copy(model_dir: Path, tmp_path: Path, damage: str) -> Path:
    copy = tmp_path / damage
    shutil.copytree(model_dir, copy)
    if damage == "no-metadata":
        (copy / METADATA_FILE_NAME).unlink()
    elif damage == "other-sha256":
        metadata = json.loads((copy / METADATA_FILE_NAME).read_text())
        (copy / METADATA_FILE_NAME).write_text(json.dumps({**metadata, "model_sha256": "0" * 64}))
    elif damage == "higher-expected-score":
        test_data = json.loads((copy / "test_data.json").read_text())
        (copy / "test_data.json").write_text(json.dumps({**test_data, "expected_score": 1.0}))
    return copy / MODEL_FILE_NAME


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no-metadata", "comes without model.json: its SHA-256 cannot be checked"),
        ("other-sha256", "does not match 000000000000 recorded in model.json"),
        ("higher-expected-score", "accuracy check FAILED: R^2"),
    ],
)
def test_a_candidate_that_fails_a_check_is_refused_in_one_line_and_changes_nothing(
    database: str, synthetic_model_dir: Path, synthetic_candidate_dir: Path, tmp_path: Path, damage: str, message: str
) -> None:
    refused = experiment(database, synthetic_model_dir, "start", broken_copy(synthetic_candidate_dir, tmp_path, damage))
    assert refused.returncode == 1
    line = said(refused)
    assert line.startswith("experiment: refused, nothing changed: ") and message in line
    assert recorded(database) == []


def test_a_candidate_only_the_ranking_gate_refuses_takes_traffic_with_skip_ranking_gate_and_a_warning(
    database: str, synthetic_model_dir: Path, tmp_path: Path
) -> None:
    candidate = reversed_candidate(synthetic_model_dir, tmp_path / "reversed")
    refused = experiment(database, synthetic_model_dir, "start", candidate)
    assert refused.returncode == 1
    assert "ranking gate FAILED" in refused.stderr
    started = experiment(database, synthetic_model_dir, "start", candidate, "--skip-ranking-gate")
    assert started.returncode == 0, started.stderr
    assert "WARNING" in started.stderr and "ranking gate IGNORED (--skip-ranking-gate)" in started.stderr
    assert [row["state"] for row in recorded(database)] == ["running"]


@pytest.mark.parametrize("share", ["0", "1", "1.5", "half"])
def test_a_share_outside_zero_to_one_is_refused(database: str, synthetic_model_dir: Path, share: str) -> None:
    refused = experiment(database, synthetic_model_dir, "start", "any.pkl", "--share", share)
    assert refused.returncode == 2
    assert "--share" in refused.stderr
