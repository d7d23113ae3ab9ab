"""A database outage while uwsgi replaces every worker: recommendations go on being answered, none is lost.

The stack runs on PostgreSQL behind a loopback relay (tests/relay.py), which the test cuts and reopens. Under
the outage each worker is killed with SIGKILL in turn, then a model swap replaces them all (a chain reload):
a worker must start without the database.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.store.recommendation_log import recommendations
from tests.deploy.test_run_stack import PASSWORD, ROOT, kill_group, stack_environ, start_stack, uwsgi_processes
from tests.relay import Relay, relayed_url
from tests.servers import Clients

pytestmark = [pytest.mark.stack, pytest.mark.service]

CLIENTS = 4


class Recommending(Clients):
    """Clients asking for recommendations until stopped; each answer noted with its time, status and id."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(CLIENTS, join_seconds=30)
        self.url = url
        self.headers = headers
        self.answers: list[tuple[float, int, str | None]] = []

    def run_client(self, client: int) -> None:
        session = requests.Session()
        turn = 0
        while not self.stopped.is_set():
            turn += 1
            body = {"age": 1 + (client * 31 + turn) % 120, "gender": "MFO"[turn % 3], "occupation": "artist"}
            try:
                answer = session.post(f"{self.url}/api/recommend", json=body, headers=self.headers, timeout=10)
                status, recommendation_id = answer.status_code, answer.json().get("id")
            except (requests.RequestException, ValueError):
                status, recommendation_id = 0, None
            self.answers.append((time.monotonic(), status, recommendation_id))

    def acknowledged(self) -> set[str]:
        return {recommendation_id for _, status, recommendation_id in self.answers if status == 200}

    def failures(self) -> int:
        return sum(status != 200 for _, status, _ in self.answers)

    def longest_gap(self, since: float) -> float:
        """The longest time, after since, without a recommendation answered 200."""
        times = [since] + [at for at, status, _ in self.answers if status == 200 and at >= since]
        times.append(self.answers[-1][0])
        return max(later - earlier for earlier, later in itertools.pairwise(times))


def wait_for_new_workers(stack: subprocess.Popen, old: set[int], count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        workers = set(uwsgi_processes(stack, "worker"))
        if len(workers) == count and not workers & old:
            return
        time.sleep(0.1)
    raise AssertionError(f"uwsgi did not replace workers {sorted(old)} within {seconds} s")


def wait_until_serving(stack_log: Path, workers: set[int], seconds: float = 60) -> None:
    """Until uwsgi has logged that each of the workers has loaded the app (with lazy-apps a worker loads it before it
    accepts, in 4-6 s on these machines): only then may the next be killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = stack_log.read_text(errors="replace").splitlines()
        if all(any(has_loaded(line, worker) for line in lines) for worker in workers):
            return
        time.sleep(0.1)
    raise AssertionError(f"uwsgi workers {sorted(workers)} did not load the app within {seconds} s")


def has_loaded(line: str, worker: int) -> bool:
    """Whether the line is uwsgi's saying that the worker has loaded the app."""
    return line.startswith("WSGI app 0 (mountpoint='') ready in") and line.endswith(f"pid: {worker} (default app)")


def stored_ids(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(select(recommendations.c.id)).scalars())
    finally:
        engine.dispose()


def test_recommendations_are_answered_while_every_worker_is_replaced_during_an_outage(
    synthetic_model_dir: Path, tmp_path: Path, empty_postgres: str, relay: Relay
) -> None:
    served = tmp_path / "model"
    served.mkdir()
    for name in (MODEL_FILE_NAME, METADATA_FILE_NAME):  # swap-model replaces the served files: a copy of its own
        shutil.copy(synthetic_model_dir / name, served / name)
    url, stack = start_stack(served / MODEL_FILE_NAME, tmp_path, relayed_url(empty_postgres, relay))
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()
        with Recommending(url, {"Authorization": f"Bearer {token['access_token']}"}) as clients:
            time.sleep(1)
            relay.cut()
            outage_began = time.monotonic()
            killed = 0
            for worker in uwsgi_processes(stack, "worker"):
                os.kill(worker, signal.SIGKILL)
                killed += 1
                wait_for_new_workers(stack, {worker}, count=2)
                wait_until_serving(tmp_path / "stack.log", set(uwsgi_processes(stack, "worker")))
            before_reload = set(uwsgi_processes(stack, "worker"))
            (master,) = uwsgi_processes(stack, "master")
            swap = subprocess.run(
                [str(ROOT / "deploy" / "swap-model"), str(served / MODEL_FILE_NAME), "--pid", str(master)],
                env=stack_environ(served / MODEL_FILE_NAME, tmp_path, 0),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert swap.returncode == 0, swap.stderr
            wait_for_new_workers(stack, before_reload, count=2)
            wait_until_serving(tmp_path / "stack.log", set(uwsgi_processes(stack, "worker")))
            relay.open()
        acknowledged = clients.acknowledged()
        assert len(acknowledged) > 100, "the load did not get going"
        assert clients.longest_gap(since=outage_began) <= 2.0
        assert clients.failures() <= killed
        deadline = time.monotonic() + 60
        while not acknowledged <= stored_ids(empty_postgres) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert acknowledged - stored_ids(empty_postgres) == set()
    finally:
        kill_group(stack)
