"""What status says, and the guardrail: a worse candidate, or arms off their share, stop the experiment."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.experiment.arms import CANDIDATE, CONTROL
from app.experiment.report import guard, status_report
from app.store.experiments import RUNNING, STOPPED, latest_experiment, start_experiment
from app.store.recommendation_log import RecommendationLog, make_engine, sqlite_url

TITLES = [f"Movie {number} (1990)" for number in range(10)]


@pytest.fixture
def log(tmp_path: Path) -> Iterator[RecommendationLog]:
    store = RecommendationLog(make_engine(sqlite_url(tmp_path / "report.sqlite3")))
    store.create_tables()
    start_experiment(
        store.engine, share=0.5, control_version="c" * 64, candidate_version="d" * 64, candidate_model=b"model",
        candidate_metadata="{}", candidate_signature="0" * 64, ranking_gate_skipped=True,
    )  # fmt: skip
    yield store
    store.engine.dispose()


def serve(log: RecommendationLog, arm: str, units: int, liked: int) -> None:
    """units recommendations in an arm, each with `liked` titles scored 5 and one scored 2."""
    for _ in range(units):
        recommendation_id = log.record_recommendation(
            age=30, gender="M", occupation="artist", max_recs=10, titles=TITLES, model_version=arm[:2] * 32,
            experiment_id=1, arm=arm,
        )  # fmt: skip
        for movie in TITLES[:liked]:
            log.record_score(recommendation_id=recommendation_id, movie=movie, score=5)
        log.record_score(recommendation_id=recommendation_id, movie=TITLES[-1], score=2)


def test_status_json_has_the_stable_keys_and_each_arms_figures(log: RecommendationLog) -> None:
    serve(log, CONTROL, 3, liked=4)
    serve(log, CANDIDATE, 2, liked=1)
    status = json.loads(status_report(log.engine, as_json=True))
    assert {"state", "verdict", "share", "srm_p", "arms", "interval", "units_needed"} <= set(status)
    assert (status["state"], status["verdict"], status["share"], status["ranking_gate_skipped"]) == (
        RUNNING,
        "undecided",
        0.5,
        True,
    )
    arms = {arm["name"]: arm for arm in status["arms"]}
    assert (arms[CONTROL]["version"], arms[CANDIDATE]["version"]) == ("c" * 64, "d" * 64)
    # Recounted from what serve() wrote: 4 liked of 10 shown per control recommendation, 1 per candidate one.
    assert (arms[CONTROL]["recommendations"], arms[CONTROL]["scored"], arms[CONTROL]["scores"]) == (3, 3, 15)
    assert (arms[CONTROL]["metric"], arms[CANDIDATE]["metric"]) == (4.0, 1.0)
    assert arms[CANDIDATE]["mean_score"] == pytest.approx((5 + 2) / 2)


def test_the_guardrail_stops_a_worse_candidate_once_with_one_error_line(
    log: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    serve(log, CONTROL, 160, liked=5)
    serve(log, CANDIDATE, 160, liked=1)
    with caplog.at_level(logging.ERROR):
        guard(log.engine, latest_experiment(log.engine))
        guard(log.engine, latest_experiment(log.engine))  # stopped already: nothing more
    experiment = latest_experiment(log.engine)
    assert experiment.state == STOPPED
    assert experiment.reason.startswith("stopped by its guardrail: the candidate is worse")
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("experiment 1 stopped by its guardrail: the candidate is worse")


def test_the_guardrail_stops_an_experiment_whose_arms_are_off_the_share(
    log: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    serve(log, CONTROL, 120, liked=3)
    serve(log, CANDIDATE, 60, liked=3)  # half of what a 50% share gives
    with caplog.at_level(logging.ERROR):
        guard(log.engine, latest_experiment(log.engine))
    assert latest_experiment(log.engine).reason.startswith("stopped by its guardrail: sample ratio mismatch")
    assert len([record for record in caplog.records if record.levelno == logging.ERROR]) == 1


def test_the_guardrail_leaves_an_undecided_experiment_running(log: RecommendationLog) -> None:
    serve(log, CONTROL, 40, liked=3)
    serve(log, CANDIDATE, 40, liked=3)
    guard(log.engine, latest_experiment(log.engine))
    assert latest_experiment(log.engine).state == RUNNING
