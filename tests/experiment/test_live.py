"""A live experiment on deploy/run-stack (PostgreSQL), with a simulated population of real people.

People are the ml-100k users the served model never saw (its held-out users). Each asks for recommendations
as who they are, and scores the shown titles that they rated in ml-100k, with their own rating. The
candidate is the served model with every ranking reversed: people like it far less, and the guardrail must
stop the experiment by itself, with one ERROR line, after which every answer comes from the control.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.model.data import load_dataset
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.tables import recommendations
from app.training.metrics import split_users
from app.training.train import TEST_USER_SHARE
from tests.deploy.test_run_stack import PASSWORD, ROOT, kill_group, stack_environ, start_stack
from tests.experiment.candidates import reversed_candidate
from tests.servers import Clients, ask

pytestmark = [pytest.mark.dataset, pytest.mark.stack, pytest.mark.service]

CLIENTS = 4
# The most scored recommendations the guardrail may take to stop a candidate this much worse (README).
MOST_SCORED_BEFORE_STOP = 1_000
# A recommendation reaches the database within a second of its answer (the mule's copy lag): a score sent
# at once waits out at most this many 503s (Retry-After: 1). A recommendation waits out none.
MOST_WAITS = {"recommend": 0, "score": 2}


class Population:
    """The model's held-out users: who they are, and what they rated each title."""

    def __init__(self, data_dir: Path) -> None:
        dataset = load_dataset(data_dir)
        _, held_out = split_users(dataset.users.index, seed=1, held_out_share=TEST_USER_SHARE)
        self.people = dataset.users.loc[held_out]
        ratings = dataset.ratings[dataset.ratings["user_id"].isin(held_out)]
        titles = dataset.movies["title"]
        self.ratings = {
            user: dict(zip(titles.loc[group["movie_id"]], group["rating"], strict=True))
            for user, group in ratings.groupby("user_id")
        }

    def visitor(self, draw: random.Random) -> tuple[int, dict]:
        user = draw.choice(self.people.index.tolist())
        person = self.people.loc[user]
        return user, {"age": int(person["age"]), "gender": person["gender"], "occupation": person["occupation"]}


class Visits(Clients):
    """Clients that recommend to people and score as they would, until stopped; every answer is counted."""

    def __init__(self, url: str, headers: dict[str, str], population: Population) -> None:
        super().__init__(CLIENTS, join_seconds=60)
        self.url, self.headers, self.population = url, headers, population
        self.outcomes: Counter = Counter()
        self.waits: dict[str, Counter] = {"recommend": Counter(), "score": Counter()}  # 503s waited out: requests
        self.versions: list[tuple[float, str]] = []  # (when answered, which model version answered)

    def run_client(self, client: int) -> None:
        draw = random.Random(client)
        with requests.Session() as session:
            while not self.stopped.is_set():
                user, person = self.population.visitor(draw)
                answer, outcome, waits = ask(
                    session, f"{self.url}/api/recommend", person, self.headers, retry_after=True
                )
                with self.lock:
                    self.outcomes[("recommend", outcome)] += 1
                    self.waits["recommend"][waits] += 1
                if outcome != 200:
                    continue
                given = answer.json()
                with self.lock:
                    self.versions.append((time.monotonic(), given["id"]))
                rated = self.population.ratings.get(user, {})
                for title in given["recommendations"]:
                    if title in rated:
                        score = {"id": given["id"], "movie": title, "score": int(rated[title])}
                        url = f"{self.url}/api/recommend/score"
                        _, outcome, waits = ask(session, url, score, self.headers, retry_after=True)
                        with self.lock:
                            self.outcomes[("score", outcome)] += 1
                            self.waits["score"][waits] += 1


def experiment(environ: dict[str, str], *arguments: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.experiment", *map(str, arguments)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def status(environ: dict[str, str]) -> dict:
    shown = experiment(environ, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_a_worse_candidate_is_stopped_by_the_guardrail_and_every_answer_returns_to_the_control(
    real_data_dir: Path, real_model_dir: Path, tmp_path: Path, empty_postgres: str
) -> None:
    population = Population(real_data_dir)
    candidate = reversed_candidate(real_model_dir, tmp_path / "reversed")
    control = Recommender.load(real_model_dir / MODEL_FILE_NAME)
    url, stack = start_stack(real_model_dir / MODEL_FILE_NAME, tmp_path, empty_postgres)
    environ = stack_environ(real_model_dir / MODEL_FILE_NAME, tmp_path, 0, empty_postgres)
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=10).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        with Visits(url, headers, population) as visits:
            time.sleep(2)
            started = experiment(environ, "start", candidate, "--skip-ranking-gate")
            assert started.returncode == 0, started.stderr
            deadline = time.monotonic() + 300
            while (shown := status(environ))["state"] == "running":
                assert time.monotonic() < deadline, f"no verdict in 300 s: {shown}"
                time.sleep(1)
            stopped_at = time.monotonic()
            time.sleep(8)
        time.sleep(1)  # the mule copies the last answers' journal lines
        after_stop = [answered for answered_at, answered in visits.versions if answered_at > stopped_at + 5]
        assert after_stop, "no recommendation after the stop"
        assert served_by(empty_postgres, after_stop) == {control.version}
        assert (shown["state"], shown["verdict"]) == ("stopped", "worse"), shown
        scored = sum(arm["scored"] for arm in shown["arms"])
        assert scored <= MOST_SCORED_BEFORE_STOP, shown
        print(f"experiment figure: stopped as worse after {scored} scored recommendations: {shown}", file=sys.stderr)
        assert set(visits.outcomes) <= {("recommend", 200), ("score", 200)}, visits.outcomes
        print(f"503s waited out (waits: requests): {visits.waits}", file=sys.stderr)
        for route, most in MOST_WAITS.items():  # "no request failed" does not hide retries
            assert max(visits.waits[route]) <= most, (route, visits.waits[route])
        log = (tmp_path / "stack.log").read_text()
        errors = [line for line in log.splitlines() if " ERROR " in line]
        assert len(errors) == 1 and "stopped by its guardrail" in errors[0], errors
    finally:
        kill_group(stack)


def served_by(database_url: str, recommendation_ids: list[str]) -> set[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(recommendations.c.model_version).where(recommendations.c.id.in_(recommendation_ids))
            return set(connection.execute(query).scalars())
    finally:
        engine.dispose()
