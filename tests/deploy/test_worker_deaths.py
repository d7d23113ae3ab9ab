"""A uwsgi worker that dies with a request in hand costs no request: deploy/run-stack's nginx sends it again."""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from app.model.recommender import MODEL_FILE_NAME
from tests.deploy.test_run_stack import PASSWORD, kill_group, start_stack, uwsgi_processes

pytestmark = [pytest.mark.stack, pytest.mark.slow]

KILLS = 12
REQUESTS_PER_CLIENT = 20_000
# One worker per CPU (deploy/uwsgi.ini).
WORKERS = os.cpu_count()


def serving_workers(stack: subprocess.Popen, log: Path, killed: set[int]) -> list[int]:
    """The workers, once there are all of them and each has loaded the app (lazy-apps: each loads its own)."""
    deadline = time.monotonic() + 60
    while True:
        workers = set(uwsgi_processes(stack, "worker")) - killed
        ready = {int(pid) for pid in re.findall(r"^WSGI app 0 .* ready in .* pid: (\d+)", log.read_text(), re.M)}
        if len(workers) == WORKERS and workers <= ready:
            return sorted(workers)
        assert time.monotonic() < deadline, "uwsgi did not replace a killed worker"
        time.sleep(0.2)


def kill_in_a_request(worker: int) -> None:
    """SIGKILL the worker while it runs (state R): in a request, as an idle worker sleeps in the kernel."""
    deadline = time.monotonic() + 10
    while Path(f"/proc/{worker}/stat").read_text().rpartition(")")[2].split()[0] != "R":
        assert time.monotonic() < deadline, f"worker {worker} never took a request"
    os.kill(worker, signal.SIGKILL)


def test_workers_killed_under_load_fail_no_request(synthetic_model_dir: Path, tmp_path: Path) -> None:
    url, stack = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    statuses: collections.Counter[int] = collections.Counter()
    stop = threading.Event()

    def recommend_in_a_loop(headers: dict) -> None:
        session = requests.Session()
        body = {"age": 30, "gender": "F", "occupation": "writer", "max_recs": 100, "explain": True}
        for _ in range(REQUESTS_PER_CLIENT):
            if stop.is_set():
                return
            statuses[session.post(f"{url}/api/recommend", json=body, headers=headers, timeout=30).status_code] += 1

    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        # Twice as many clients as workers, asking for long answers: the workers are rarely idle.
        clients = [threading.Thread(target=recommend_in_a_loop, args=(headers,)) for _ in range(2 * WORKERS)]
        for client in clients:
            client.start()
        killed: set[int] = set()
        for _ in range(KILLS):
            victim = random.choice(serving_workers(stack, tmp_path / "stack.log", killed))
            time.sleep(0.5)  # every worker serving
            kill_in_a_request(victim)
            killed.add(victim)
        serving_workers(stack, tmp_path / "stack.log", killed)
        stop.set()
        for client in clients:
            client.join(timeout=60)
    finally:
        stop.set()
        kill_group(stack)
    nginx_saw = (tmp_path / "stack.log").read_text().count("while reading response header from upstream")
    # The kills did take requests down with the workers, and nginx sent each of them again.
    assert nginx_saw > 0
    assert statuses.keys() == {200}, statuses
