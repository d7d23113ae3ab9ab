"""An experiment whose log holds a million recommendations, on PostgreSQL: `status` reads it in a moment, and on
deploy/run-stack the mule stays small and copies at once, so that every score is answered 200 at the first try."""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from app.experiment.report import experiment_status
from app.model.data import OCCUPATIONS
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.experiments import RUNNING, latest_experiment
from app.store.recommendation_log import RecommendationLog, make_engine
from tests.deploy.test_run_stack import PASSWORD, kill_group, stack_environ, start_stack
from tests.experiment.bulk_log import load_experiment_log
from tests.experiment.test_live import experiment
from tests.servers import Clients, ask

pytestmark = [pytest.mark.stack, pytest.mark.service]

RECOMMENDATIONS = 1_000_000
# The bounds: what status took (42 s) and the mule held (1.8 GB) when they summed the whole log.
STATUS_SECONDS = 1.0
MULE_MIB = 300
CLIENTS = 4
SECONDS = 30


class Traffic(Clients):
    """Clients that recommend to random people and score two of the titles (one of them again), asking once."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(CLIENTS, join_seconds=60)
        self.url, self.headers = url, headers
        self.outcomes: Counter = Counter()

    def run_client(self, client: int) -> None:
        draw = random.Random(client)
        with requests.Session() as session:
            while not self.stopped.is_set():
                person = {
                    "age": draw.randint(10, 70),
                    "gender": draw.choice("MF"),
                    "occupation": draw.choice(OCCUPATIONS),
                }
                answer, outcome, _ = ask(session, f"{self.url}/api/recommend", person, self.headers, retry_after=False)
                self.outcomes["recommend", outcome] += 1
                if outcome != 200:
                    continue
                given = answer.json()
                titles = given["recommendations"]
                for movie in (titles[0], titles[-1], titles[0]):
                    score = {"id": given["id"], "movie": movie, "score": draw.randint(1, 5)}
                    _, outcome, _ = ask(
                        session, f"{self.url}/api/recommend/score", score, self.headers, retry_after=False
                    )
                    self.outcomes["score", outcome] += 1


def mule_mib(stack: subprocess.Popen) -> float:
    found = subprocess.run(["pgrep", "-g", str(stack.pid), "-f", "uWSGI mule"], capture_output=True, text=True)
    (pid,) = found.stdout.split()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)[1]) / 1024


def test_a_million_recommendations_are_read_in_a_moment_and_every_score_is_answered_at_the_first_try(
    synthetic_model_dir: Path, synthetic_candidate_dir: Path, tmp_path: Path, empty_postgres: str
) -> None:
    model_path = synthetic_model_dir / MODEL_FILE_NAME
    environ = stack_environ(model_path, tmp_path, 0, empty_postgres)
    engine = make_engine(empty_postgres)
    RecommendationLog(engine).create_tables()
    started = experiment(environ, "start", synthetic_candidate_dir / MODEL_FILE_NAME, "--skip-ranking-gate")
    assert started.returncode == 0, started.stderr
    running = latest_experiment(engine)
    version = Recommender.load(model_path).version
    load_experiment_log(engine, experiment_id=running.id, count=RECOMMENDATIONS, share=running.share, version=version)

    began = time.perf_counter()
    status = experiment_status(engine, running)
    took = time.perf_counter() - began
    assert sum(arm["recommendations"] for arm in status["arms"]) == RECOMMENDATIONS
    assert took < STATUS_SECONDS, f"status took {took:.2f} s"

    # Not a bound under test: the workers' and the mule's start took over 60 s on a machine shared by 7 sessions.
    url, stack = start_stack(model_path, tmp_path, empty_postgres, healthy_within=180)
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=10).json()
        memory = [mule_mib(stack)]
        with Traffic(url, {"Authorization": f"Bearer {token['access_token']}"}) as traffic:
            for _ in range(SECONDS):
                time.sleep(1)
                memory.append(mule_mib(stack))
        time.sleep(1)  # the mule copies the last answers' journal lines
        answered = experiment_status(engine, latest_experiment(engine))
    finally:
        kill_group(stack)
        engine.dispose()
    recommended, scored = traffic.outcomes["recommend", 200], traffic.outcomes["score", 200]
    print(f"status of {RECOMMENDATIONS} recommendations: {took * 1000:.0f} ms; {recommended} recommendations and "
          f"{scored} scores in {SECONDS} s; the mule's memory at most {max(memory):.0f} MiB")  # fmt: skip
    assert set(traffic.outcomes) == {("recommend", 200), ("score", 200)}, traffic.outcomes
    assert recommended > 10 * CLIENTS
    assert max(memory) < MULE_MIB, memory
    assert answered["state"] == RUNNING, answered["reason"]
    assert sum(arm["recommendations"] for arm in answered["arms"]) == RECOMMENDATIONS + recommended
