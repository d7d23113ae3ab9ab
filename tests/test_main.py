"""main.py as a real process: the development server end to end, and start-up failures."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.store.recommendation_log import scores, sqlite_url
from tests.model.test_recommender import make_archive
from tests.servers import PASSWORD, ROOT, SECRET, free_port, running_main, service_environ


@pytest.fixture
def server(synthetic_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """(base URL, database URL, process) of main.py serving the synthetic model."""
    database = sqlite_url(tmp_path / "served.sqlite3")
    with running_main(synthetic_model_dir / MODEL_FILE_NAME, database) as (url, process):
        yield url, database, process


def test_login_recommend_and_score_over_http(server: tuple[str, str, subprocess.Popen]) -> None:
    url, database, process = server
    token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    asked = {"age": 33, "gender": "O", "occupation": "educator", "max_recs": 4}
    answer = requests.post(f"{url}/api/recommend", json=asked, headers=headers, timeout=5).json()
    assert len(answer["recommendations"]) == 4
    given = {"id": answer["id"], "movie": answer["recommendations"][1], "score": 5}
    reply = requests.post(f"{url}/api/recommend/score", json=given, headers=headers, timeout=5)
    assert (reply.status_code, reply.json()) == (200, "Ok")
    assert not any(character.isdigit() for character in reply.headers["Server"])  # no version
    with create_engine(database).connect() as connection:
        rows = connection.execute(select(scores)).mappings().all()
    assert [(row["recommendation_id"], row["movie"], row["score"]) for row in rows] == [
        (answer["id"], given["movie"], 5.0)
    ]

    requests.post(f"{url}/api/login", json={"session_password": "wrong"}, timeout=5)
    process.terminate()
    log = process.communicate(timeout=10)[1]
    app_lines = [line for line in log.splitlines() if " app" in line]
    assert any(" INFO app.requests " in line and "POST /api/recommend/score 200" in line for line in app_lines)
    assert any(" WARNING app " in line and "refused login from 127.0.0.1" in line for line in app_lines)
    assert PASSWORD not in log and "wrong" not in log.replace("wrong password", "")
    assert token not in log


def run_main(**settings: str) -> subprocess.CompletedProcess:
    environ = service_environ(JWT_SECRET_KEY=SECRET, **settings)
    return subprocess.run(
        [sys.executable, "main.py", "--port", str(free_port())],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {start}"), lines[0]


def test_no_password_stops_the_start_with_one_line(synthetic_model_dir: Path) -> None:
    result = run_main(ML_MODEL_PATH=str(synthetic_model_dir / MODEL_FILE_NAME))
    assert_one_line(result, "SESSION_PASSWORD is not set")


def test_a_missing_model_stops_the_start_with_one_line(tmp_path: Path) -> None:
    result = run_main(ML_MODEL_PATH=str(tmp_path / MODEL_FILE_NAME), SESSION_PASSWORD="x")
    assert_one_line(result, "ML_MODEL_PATH: cannot read")


def test_a_model_that_does_not_match_its_metadata_stops_the_start(synthetic_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE_NAME).write_bytes((synthetic_model_dir / MODEL_FILE_NAME).read_bytes())
    (tmp_path / METADATA_FILE_NAME).write_text(json.dumps({"model_sha256": "1" * 64}))
    result = run_main(ML_MODEL_PATH=str(tmp_path / MODEL_FILE_NAME), SESSION_PASSWORD="x")
    assert_one_line(result, "ML_MODEL_PATH: ")
    assert "does not match" in result.stderr


def read_only_sqlite(tmp_path: Path) -> str:
    database = tmp_path / "read-only.sqlite3"
    engine = create_engine(sqlite_url(database))
    engine.connect().close()
    engine.dispose()
    return f"sqlite:///file:{database}?mode=ro&uri=true"


@pytest.mark.parametrize(
    ("database_url", "message"),
    [
        (lambda _: f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing", "cannot use the database ("),
        (read_only_sqlite, "cannot use the database (attempt to write a readonly database)"),
    ],
    ids=["unreachable-postgresql", "read-only-sqlite"],
)
def test_a_database_it_cannot_use_stops_the_start_with_one_line(
    synthetic_model_dir: Path, tmp_path: Path, database_url: Callable[[Path], str], message: str
) -> None:
    result = run_main(
        ML_MODEL_PATH=str(synthetic_model_dir / MODEL_FILE_NAME), SESSION_PASSWORD="x",
        DATABASE_URL=database_url(tmp_path),
    )  # fmt: skip
    assert_one_line(result, f"DATABASE_URL: {message}")


def test_a_model_made_with_other_libraries_is_served_with_a_warning(synthetic_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / MODEL_FILE_NAME).write_bytes((synthetic_model_dir / MODEL_FILE_NAME).read_bytes())
    metadata = json.loads((synthetic_model_dir / METADATA_FILE_NAME).read_text())
    metadata["libraries"]["scikit-learn"] = "0.24.2"
    (tmp_path / METADATA_FILE_NAME).write_text(json.dumps(metadata))
    with running_main(tmp_path / MODEL_FILE_NAME, sqlite_url(tmp_path / "db.sqlite3")) as (_, process):
        process.terminate()
        log = process.communicate(timeout=10)[1]
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert any("made with other libraries: scikit-learn 0.24.2 (model) against" in line for line in warnings)


@pytest.mark.parametrize(
    ("name", "members", "message"),
    [
        ("model.pkl", None, "holds a dict, not a RelevanceForest"),
        ("model.tar.gz", {"model.pkl": b"a", "other.pkl": b"b"}, "must hold one model.pkl"),
        ("model.tar.gz", {}, "must hold one model.pkl"),
        ("model.tar.gz", {"../model.pkl": b"a"}, "must hold one model.pkl"),
    ],
)
def test_a_file_that_is_not_one_servable_model_stops_the_start(
    tmp_path: Path, name: str, members: dict | None, message: str
) -> None:
    path = tmp_path / name
    if members is None:
        path.write_bytes(pickle.dumps({"not": "a model"}))
    else:
        make_archive(path, members)
    result = run_main(ML_MODEL_PATH=str(path), SESSION_PASSWORD="x")
    assert_one_line(result, "ML_MODEL_PATH: ")
    assert message in result.stderr
