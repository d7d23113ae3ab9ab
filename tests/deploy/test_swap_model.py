"""deploy/swap-model on a running stack: a new model goes live with no failed request; a bad one is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.recommendation_log import recommendations, sqlite_url
from app.training.train import train
from tests.deploy.test_run_stack import PASSWORD, ROOT, kill_group, start_stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def swap(
    new_model: Path, served: Path, stack: subprocess.Popen, script: Path = ROOT / "deploy" / "swap-model"
) -> subprocess.CompletedProcess:
    master = subprocess.run(
        ["pgrep", "-g", str(stack.pid), "-f", "^uWSGI master"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    return subprocess.run(
        [sys.executable, str(script), str(new_model), "--pid", master],
        env={"ML_MODEL_PATH": str(served), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


def served_version(url: str) -> str:
    return requests.get(f"{url}/health", timeout=5).json()["model_version"]


@pytest.fixture
def served(synthetic_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic model, where the stack serves it from."""
    directory = tmp_path / "served"
    shutil.copytree(synthetic_model_dir, directory)
    return directory / MODEL_FILE_NAME


def test_a_swap_under_load_fails_no_request_and_serves_the_new_version(
    served: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    train(synthetic_data_dir, tmp_path / "new", seed=2)
    new_version = Recommender.load(tmp_path / "new" / MODEL_FILE_NAME).version
    url, stack = start_stack(served, tmp_path)
    old_version = served_version(url)
    assert old_version != new_version
    statuses: list[int] = []
    stop = threading.Event()

    def recommend_in_a_loop(headers: dict) -> None:
        session = requests.Session()
        while not stop.is_set():
            body = {"age": 30, "gender": "O", "occupation": "artist"}
            statuses.append(session.post(f"{url}/api/recommend", json=body, headers=headers, timeout=30).status_code)

    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
        clients = [
            threading.Thread(target=recommend_in_a_loop, args=({"Authorization": f"Bearer {token}"},)) for _ in range(4)
        ]
        for client in clients:
            client.start()
        time.sleep(1)
        result = swap(tmp_path / "new" / MODEL_FILE_NAME, served, stack)
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 60
        while served_version(url) != new_version:
            assert time.monotonic() < deadline, "the new model never went live"
            time.sleep(0.2)
        time.sleep(1)
        stop.set()
        for client in clients:
            client.join(timeout=30)
        time.sleep(0.5)  # the journal mule copies the last answers
    finally:
        stop.set()
        kill_group(stack)
    assert statuses and set(statuses) == {200}, {code: statuses.count(code) for code in set(statuses)}
    engine = create_engine(sqlite_url(tmp_path / "stack.sqlite3"))
    with engine.connect() as connection:
        versions = (
            connection.execute(select(recommendations.c.model_version).order_by(recommendations.c.created_at))
            .scalars()
            .all()
        )
    engine.dispose()
    assert versions[0] == old_version
    assert versions[-1] == new_version
    # The workers are replaced one at a time, so the two versions answer side by side for a moment;
    # once the reload is over (the last second of load), only the new one answers.
    assert set(versions[-20:]) == {new_version}


def test_a_model_that_fails_its_checks_is_refused_and_the_old_one_keeps_serving(served: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.pkl").write_bytes(b"not a model")
    url, stack = start_stack(served, tmp_path)
    try:
        before = served_version(url)
        result = swap(tmp_path / "broken.pkl", served, stack)
        assert result.returncode == 1
        assert "refused, the stack keeps its model" in result.stderr
        time.sleep(1)
        assert served_version(url) == before
        assert Recommender.load(served).version == before
    finally:
        kill_group(stack)


def test_a_worker_starting_at_any_step_of_a_swap_loads_one_whole_version(
    served: Path, synthetic_model_dir: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    train(synthetic_data_dir, tmp_path / "new", seed=2)
    new_model, old_model = tmp_path / "new" / MODEL_FILE_NAME, synthetic_model_dir / MODEL_FILE_NAME
    url, stack = start_stack(served, tmp_path)
    starts = []
    try:
        # From the plain files the stack started on, then between versions, then pruning the oldest.
        for model in (new_model, old_model, new_model):
            result = swap(model, served, stack, script=ROOT / "tests" / "deploy" / "watched_swap.py")
            assert result.returncode == 0, result.stderr
            starts += [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        deadline = time.monotonic() + 60
        while served_version(url) != Recommender.load(new_model).version:
            assert time.monotonic() < deadline, "the last model never went live"
            time.sleep(0.2)
    finally:
        kill_group(stack)
    refused = [start for start in starts if "refused" in start]
    assert len(starts) > 30 and not refused, refused
    loaded = {start["version"] for start in starts}
    assert loaded == {Recommender.load(model).version for model in (new_model, old_model)}
    # The version served and the one it replaced.
    assert len(list((served.parent / "versions").iterdir())) == 2
