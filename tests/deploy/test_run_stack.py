"""deploy/run-stack for real: nginx (Debian's) in front of uwsgi (PyPI's), on a loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.recommender import MODEL_FILE_NAME
from app.store import recommendations, sqlite_url
from tests.test_main import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "stack password"
pytestmark = pytest.mark.stack


def stack_environ(model_path: Path, work_dir: Path, port: int) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if key not in ("SESSION_PASSWORD", "ML_MODEL_PATH")}
    return {
        **environ,
        # The uwsgi of this virtual environment, as the image has it on PATH.
        "PATH": f"{Path(sys.executable).parent}:{environ['PATH']}",
        "PORT": str(port),
        "ML_MODEL_PATH": str(model_path),
        "SESSION_PASSWORD": PASSWORD,
        "JWT_SECRET_KEY": "a-stack-test-signing-key-of-decent-length",
        "DATABASE_URL": sqlite_url(work_dir / "stack.sqlite3"),
        "RECOMMENDATION_JOURNAL_DIR": str(work_dir / "journal"),
    }


def wait_until_healthy(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "run-stack stopped before it was healthy"
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("the stack did not become healthy")


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=90)


def group_is_gone(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def start_stack(model_path: Path, work_dir: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    with (work_dir / "stack.log").open("a") as log:
        process = subprocess.Popen(
            [str(ROOT / "deploy" / "run-stack")],
            env=stack_environ(model_path, work_dir, port),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, process)
    return url, process


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def stack(synthetic_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    try:
        yield url, process
    finally:
        kill_group(process)


def test_the_stack_serves_the_api_through_nginx_and_stops_on_sigterm(stack: tuple[str, subprocess.Popen]) -> None:
    url, process = stack
    login = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5)
    assert login.headers["Server"] == "nginx"
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    answers = [
        requests.post(
            f"{url}/api/recommend", json={"age": age, "gender": "F", "occupation": "artist"}, headers=headers, timeout=5
        ).json()
        for age in range(20, 40)
    ]
    assert all(len(answer["recommendations"]) == 10 for answer in answers)
    scored = requests.post(
        f"{url}/api/recommend/score",
        json={"id": answers[0]["id"], "movie": answers[0]["recommendations"][0], "score": 4},
        headers=headers,
        timeout=5,
    )
    assert (scored.status_code, scored.json()) == (200, "Ok")

    metrics = requests.get(f"{url}/metrics", timeout=5).text
    # Counted across every worker.
    assert re.search(r"^recommendations_served_total 20\.0$", metrics, re.MULTILINE), metrics
    assert re.search(r"^scores_recorded_total 1\.0$", metrics, re.MULTILINE)
    assert 'http_requests_total{method="POST",route="/api/login",status="200"} 1.0' in metrics

    assert stop(process) == 0
    assert group_is_gone(process)


def test_nginx_answers_its_own_errors_in_json(stack: tuple[str, subprocess.Popen]) -> None:
    url, _ = stack
    too_large = requests.post(
        f"{url}/api/login", data="x" * 40_000, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert too_large.status_code == 413
    assert too_large.json() == {"message": "the body is too large"}
    assert "nginx/" not in too_large.headers.get("Server", "")


def test_a_configuration_mistake_stops_the_stack_with_its_message(tmp_path: Path) -> None:
    environ = stack_environ(tmp_path / "missing.pkl", tmp_path, free_port())
    result = subprocess.run(
        [str(ROOT / "deploy" / "run-stack")], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "error: ML_MODEL_PATH: cannot read" in result.stderr


def test_answered_recommendations_survive_killing_every_uwsgi_process(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    try:
        login = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        answered = {
            requests.post(
                f"{url}/api/recommend",
                json={"age": age, "gender": "M", "occupation": "doctor"},
                headers=headers,
                timeout=5,
            ).json()["id"]
            for age in range(1, 121)
        }
        # Master, workers and mule at once, with no chance to flush anything.
        subprocess.run(["pkill", "-KILL", "-g", str(process.pid), "uwsgi"], check=True)
        process.wait(timeout=60)
    finally:
        kill_group(process)
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    try:
        with create_engine(sqlite_url(tmp_path / "stack.sqlite3")).connect() as connection:
            stored = set(connection.execute(select(recommendations.c.id)).scalars())
        assert answered <= stored
        assert len(stored) == len(answered)
    finally:
        kill_group(process)
