"""A live experiment of warm start on deploy/run-stack (PostgreSQL): the scores people give change their next list.

People are the ml-100k users the served model never saw (its held-out users). A visit is one of them, drawn
at random, with a client key of its own (a unit of the experiment): they ask three times for 10 titles,
score the shown titles that they rated in ml-100k with their own rating, and send all their scores so far as
`rated` with the next ask. The control is the model as made before warm start (its cold twin: the same lists,
`rated` ignored but its titles left out); the candidate is the same model with warm start. The verdict must be
`better`.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, create_engine

from app.experiment.report import status_report
from app.model.recommender import MODEL_FILE_NAME, Recommender
from tests.deploy.test_run_stack import PASSWORD, kill_group, stack_environ, start_stack
from tests.experiment.candidates import cold_twin
from tests.experiment.test_live import Population, experiment, served_by, status
from tests.servers import Clients, ask

pytestmark = [pytest.mark.dataset, pytest.mark.stack, pytest.mark.service]

CLIENTS = 6
ASKS = 3
TITLES = 10
# A score is sent this long after its recommendation, once the mule has copied it (within a second): the next
# ask does not wait for it, since it carries the scores as rated.
SCORE_DELAY = 1.5
# The most units the verdict may take (README): offline, on the same population and models, 400 simulated
# experiments took 1,600 units to `better` (median), 3,177 (95th percentile), 4,325 (99th): python -m
# benchmarks.warm_experiment_units. The test's own visits and assignment are seeded: its runs took about 1,450.
MOST_UNITS = 5_000
# A stack that stops answering fails the test rather than hanging it: the units must grow within this long.
STALLED = 60.0


class Visits(Clients):
    """Clients that run visits until stopped; every answer is counted, and every title shown again that the
    visitor had scored."""

    def __init__(self, url: str, headers: dict[str, str], population: Population) -> None:
        super().__init__(CLIENTS, join_seconds=60)
        self.url, self.headers, self.population = url, headers, population
        self.outcomes: Counter = Counter()
        self.shown_again: list[tuple[str, str]] = []  # (client, title)
        self.ids: list[str] = []

    def run_client(self, client: int) -> None:
        draw = random.Random(client)
        pending: list[tuple[float, dict]] = []  # (when to send, score)
        with requests.Session() as session:
            visit = 0
            while not self.stopped.is_set():
                pending += self._visit(session, f"visitor-{client}-{visit}", draw)
                visit += 1
                now = time.monotonic()  # one reading: a score falls in due or stays pending, never in neither
                due = [score for when, score in pending if when <= now]
                pending = [(when, score) for when, score in pending if when > now]
                for score in due:
                    _, outcome, _ = ask(session, f"{self.url}/api/recommend/score", score, self.headers,
                                        retry_after=True)  # fmt: skip
                    with self.lock:
                        self.outcomes[("score", outcome)] += 1

    def _visit(self, session: requests.Session, client: str, draw: random.Random) -> list[tuple[float, dict]]:
        """One visitor's three asks; the scores they give, to be sent once their recommendations are recorded."""
        user, person = self.population.visitor(draw)
        own = self.population.ratings.get(user, {})
        rated: dict[str, int] = {}
        scores = []
        for _ in range(ASKS):
            body = {**person, "max_recs": TITLES, "client": client}
            if rated:
                body["rated"] = [{"movie": title, "score": score} for title, score in rated.items()]
            answer, outcome, _ = ask(session, f"{self.url}/api/recommend", body, self.headers, retry_after=False)
            with self.lock:
                self.outcomes[("recommend", outcome)] += 1
            if outcome != 200:
                return scores
            given = answer.json()
            with self.lock:
                self.ids.append(given["id"])
                self.shown_again += [(client, title) for title in given["recommendations"] if title in rated]
            for title in given["recommendations"]:
                if title in own:
                    rated[title] = int(own[title])
                    scores.append((time.monotonic() + SCORE_DELAY, {"id": given["id"], "movie": title,
                                                                    "score": rated[title]}))  # fmt: skip
        return scores


def read_status(engine: Engine) -> dict:
    """What `status --json` says of the experiment (without its replicas), read as the command reads it."""
    return json.loads(status_report(engine, as_json=True))


def test_a_warm_start_candidate_is_found_better_than_its_cold_twin(
    real_data_dir: Path, real_model_dir: Path, tmp_path: Path, empty_postgres: str
) -> None:
    population = Population(real_data_dir)
    control = cold_twin(real_model_dir, tmp_path / "cold")
    candidate = real_model_dir / MODEL_FILE_NAME
    versions = {Recommender.load(path).version for path in (control, candidate)}
    url, stack = start_stack(control, tmp_path, empty_postgres)
    environ = stack_environ(control, tmp_path, 0, empty_postgres)
    engine = create_engine(empty_postgres)
    try:
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=10).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        started = experiment(environ, "start", candidate)
        assert started.returncode == 0, started.stderr
        with Visits(url, headers, population) as visits:
            units, grew_at = 0, time.monotonic()
            while (shown := read_status(engine))["verdict"] == "undecided":
                assert shown["state"] == "running" and units <= MOST_UNITS, shown
                if (now := sum(arm["units"] for arm in shown["arms"])) > units:
                    units, grew_at = now, time.monotonic()
                assert time.monotonic() - grew_at < STALLED, f"no new unit in {STALLED:.0f} s: {visits.outcomes}"
                time.sleep(2)
        shown = status(environ)  # the operator's command says it too
        assert (shown["state"], shown["verdict"]) == ("running", "better"), shown
        units = sum(arm["units"] for arm in shown["arms"])
        print(f"experiment figure: warm start found better after {units} units: {shown}", file=sys.stderr)
        assert set(visits.outcomes) <= {("recommend", 200), ("score", 200)}, visits.outcomes
        assert not visits.shown_again, visits.shown_again[:5]
        time.sleep(1)  # the mule copies the last answers' journal lines
        assert served_by(empty_postgres, visits.ids) == versions
    finally:
        kill_group(stack)
        engine.dispose()
