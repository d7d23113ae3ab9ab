"""What status says, and the guardrail: a worse candidate, or arms off their share, stop the experiment; on
SQLite and on PostgreSQL (the `log` fixture), with units as noisy as people's scores."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from app.experiment.__main__ import promote
from app.experiment.analysis import Arm, compare
from app.experiment.arms import CANDIDATE, CONTROL
from app.experiment.report import experiment_status, guard, status_report
from app.store import experiment_sums
from app.store.experiments import (
    PROMOTED,
    RUNNING,
    STOPPED,
    ExperimentError,
    latest_experiment,
    narrow_interval,
    start_experiment,
)
from app.store.recommendation_log import RecommendationLog
from app.store.tables import recommendations, scores
from tests.experiment.population import TITLES, Population

MOVIES = [f"Movie {number} (1990)" for number in range(TITLES)]
SERVED = Population.with_moments(4.23, 2.56)
REVERSED = Population.with_moments(1.72, 1.86)
MUCH_BETTER = Population.with_moments(6.5, 2.5)


@pytest.fixture
def experiment_log(log: RecommendationLog) -> RecommendationLog:
    """The log, on each kind of database, with experiment 1 running at a share of 0.5."""
    start_experiment(
        log.engine, share=0.5, control_version="c" * 64, candidate_version="d" * 64, candidate_model=b"model",
        candidate_metadata="{}", candidate_signature="0" * 64, ranking_gate_skipped=True,
    )  # fmt: skip
    return log


def serve(log: RecommendationLog, arm: str, units: int, population: Population, seed: int) -> np.ndarray:
    """`units` recommendations in an arm, written as the log holds them; each one the population engages with
    has every title scored: its liked titles 4 or 5, the others 1 to 3. Returns each unit's liked titles."""
    rng = np.random.default_rng(seed)
    engaged = rng.random(units) < population.engaged
    liked = np.where(engaged, rng.binomial(TITLES, population.liking, units), 0)
    now = datetime.now(UTC)
    rows, given = [], []
    for unit_engaged, unit_liked in zip(engaged, liked, strict=True):
        recommendation_id = log.ids.new()
        rows.append({"id": recommendation_id, "created_at": now, "age": 30, "gender": "M", "occupation": "artist",
                     "max_recs": TITLES, "titles": MOVIES, "model_version": arm[:2] * 32, "experiment_id": 1,
                     "arm": arm, "client": None})  # fmt: skip
        if unit_engaged:
            values = [int(rng.integers(4, 6)) for _ in range(unit_liked)]
            values += [int(rng.integers(1, 4)) for _ in range(TITLES - unit_liked)]
            given += [{"recommendation_id": recommendation_id, "movie": movie, "score": value, "scored_at": now}
                      for movie, value in zip(MOVIES, values, strict=True)]  # fmt: skip
    with log.engine.begin() as connection:  # with the running sums, as the drain and the score route keep them
        experiment_sums.add_recommendations(connection, rows)
        connection.execute(recommendations.insert(), rows)
        for score in given:
            experiment_sums.add_score(
                connection, recommendation_id=score["recommendation_id"], movie=score["movie"], score=score["score"]
            )
            connection.execute(scores.insert(), score)
    return liked


def arm_of(liked: np.ndarray) -> Arm:
    """The arm recounted from what serve() wrote, one recommendation per unit."""
    ones = np.ones_like(liked)
    return Arm.from_units(liked=liked, recommendations=ones, shown=TITLES * ones, scored=liked > 0,
                          scores=TITLES * (liked > 0), score_sum=np.zeros_like(liked))  # fmt: skip


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]


def test_status_json_has_the_stable_keys_and_each_arms_figures_recounted(experiment_log: RecommendationLog) -> None:
    control = serve(experiment_log, CONTROL, 60, SERVED, seed=1)
    candidate = serve(experiment_log, CANDIDATE, 50, REVERSED, seed=2)
    status = json.loads(status_report(experiment_log.engine, as_json=True))
    assert {"state", "verdict", "share", "srm_p", "arms", "interval", "latest_interval", "units_needed"} <= set(status)
    assert (status["state"], status["verdict"], status["share"], status["ranking_gate_skipped"]) == (
        RUNNING,
        "undecided",
        0.5,
        True,
    )
    arms = {arm["name"]: arm for arm in status["arms"]}
    assert (arms[CONTROL]["version"], arms[CANDIDATE]["version"]) == ("c" * 64, "d" * 64)
    for name, liked in ((CONTROL, control), (CANDIDATE, candidate)):
        assert arms[name]["recommendations"] == liked.size
        assert arms[name]["metric"] == pytest.approx(liked.mean())
    # Below 150 units an arm counts no interval yet: the running one is empty, this read's is shown.
    assert status["interval"] is None
    expected = compare(arm_of(control), arm_of(candidate))
    assert status["latest_interval"] == pytest.approx([float(expected.lower), float(expected.upper)])
    assert status["latest_interval"][1] - status["latest_interval"][0] > 0.5  # noisy units: a real width


def test_the_guardrail_stops_a_worse_candidate_with_one_error_line(
    experiment_log: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    control = serve(experiment_log, CONTROL, 220, SERVED, seed=3)
    candidate = serve(experiment_log, CANDIDATE, 210, REVERSED, seed=4)
    with caplog.at_level(logging.ERROR):
        guard(experiment_log.engine, latest_experiment(experiment_log.engine))
        guard(experiment_log.engine, latest_experiment(experiment_log.engine))  # stopped already: nothing more
    experiment = latest_experiment(experiment_log.engine)
    expected = compare(arm_of(control), arm_of(candidate))
    assert str(expected.verdict) == "worse" and float(expected.upper - expected.lower) > 0.5
    assert (experiment.state, experiment.interval_upper) == (STOPPED, pytest.approx(float(expected.upper)))
    assert experiment.reason.startswith("stopped by its guardrail: the candidate is worse")
    errors = error_lines(caplog)
    assert len(errors) == 1 and errors[0].startswith("experiment 1 stopped by its guardrail: the candidate is worse")


def test_replicas_guarding_at_once_stop_the_experiment_once_with_one_error_line(
    experiment_log: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Four mules read and decide at the same moment; the stop is one conditional update, so one of them logs."""
    serve(experiment_log, CONTROL, 220, SERVED, seed=5)
    serve(experiment_log, CANDIDATE, 210, REVERSED, seed=6)
    experiment = latest_experiment(experiment_log.engine)
    together = threading.Barrier(4)
    failures = []

    def mule() -> None:
        together.wait()
        try:
            guard(experiment_log.engine, experiment)
        except Exception as error:
            failures.append(error)

    with caplog.at_level(logging.ERROR):
        threads = [threading.Thread(target=mule) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert latest_experiment(experiment_log.engine).state == STOPPED
    assert len(error_lines(caplog)) == 1


def test_the_guardrail_stops_an_experiment_whose_arms_are_off_the_share(
    experiment_log: RecommendationLog, caplog: pytest.LogCaptureFixture
) -> None:
    serve(experiment_log, CONTROL, 240, SERVED, seed=7)
    serve(experiment_log, CANDIDATE, 120, SERVED, seed=8)  # half of what a 50% share gives
    with caplog.at_level(logging.ERROR):
        guard(experiment_log.engine, latest_experiment(experiment_log.engine))
    assert latest_experiment(experiment_log.engine).reason.startswith("stopped by its guardrail: sample ratio mismatch")
    assert len(error_lines(caplog)) == 1


def test_the_guardrail_leaves_an_undecided_experiment_running(experiment_log: RecommendationLog) -> None:
    serve(experiment_log, CONTROL, 200, SERVED, seed=9)
    serve(experiment_log, CANDIDATE, 190, SERVED, seed=10)
    guard(experiment_log.engine, latest_experiment(experiment_log.engine))
    experiment = latest_experiment(experiment_log.engine)
    assert experiment.state == RUNNING
    assert experiment.interval_lower < 0 < experiment.interval_upper  # the running interval, narrowed once


def test_a_verdict_once_shown_stays_when_later_units_bring_the_latest_interval_back_over_zero(
    experiment_log: RecommendationLog,
) -> None:
    serve(experiment_log, CONTROL, 200, SERVED, seed=11)
    serve(experiment_log, CANDIDATE, 200, MUCH_BETTER, seed=12)
    first = experiment_status(experiment_log.engine, latest_experiment(experiment_log.engine))
    assert first["verdict"] == "better"
    serve(experiment_log, CONTROL, 1500, SERVED, seed=13)
    serve(experiment_log, CANDIDATE, 1500, SERVED, seed=14)  # from now on, no better than the control
    later = experiment_status(experiment_log.engine, latest_experiment(experiment_log.engine))
    assert later["latest_interval"][0] < 0  # this read alone would be undecided
    assert later["verdict"] == "better" and later["interval"][0] >= first["interval"][0] > 0
    assert later["interval"][1] <= first["interval"][1]


def test_a_narrowing_by_another_replica_between_the_read_and_the_write_is_kept(
    experiment_log: RecommendationLog,
) -> None:
    """The running interval is a compare-and-set: a write that would undo another replica's narrowing is tried
    again from what that replica stored."""
    engine, seen = experiment_log.engine, []

    def narrow(stored: tuple) -> tuple:
        seen.append(stored)
        if len(seen) == 1:  # another replica's guardrail narrows it meanwhile
            narrow_interval(engine, 1, lambda _: (-1.0, 2.0))
        lower, upper = (-5.0, 1.5) if stored == (None, None) else stored
        return max(lower, -5.0), min(upper, 1.5)

    assert narrow_interval(engine, 1, narrow) == (-1.0, 1.5)
    assert seen == [(None, None), (-1.0, 2.0)]
    stored = latest_experiment(engine)
    assert (stored.interval_lower, stored.interval_upper) == (-1.0, 1.5)


def test_promote_refuses_an_undecided_candidate_unless_forced_and_says_the_verdict(
    experiment_log: RecommendationLog,
) -> None:
    serve(experiment_log, CONTROL, 200, SERVED, seed=15)
    serve(experiment_log, CANDIDATE, 200, SERVED, seed=16)
    with pytest.raises(ExperimentError, match="experiment 1's verdict is undecided, not better: nothing changed"):
        promote(experiment_log.engine, latest_experiment(experiment_log.engine), force=False)
    assert latest_experiment(experiment_log.engine).state == RUNNING
    promote(experiment_log.engine, latest_experiment(experiment_log.engine), force=True)
    assert latest_experiment(experiment_log.engine).reason == "promoted by the operator, verdict undecided (--force)"


def test_promote_takes_a_better_candidate_without_force(
    experiment_log: RecommendationLog, capsys: pytest.CaptureFixture
) -> None:
    serve(experiment_log, CONTROL, 200, SERVED, seed=17)
    serve(experiment_log, CANDIDATE, 200, MUCH_BETTER, seed=18)
    promote(experiment_log.engine, latest_experiment(experiment_log.engine), force=False)
    assert latest_experiment(experiment_log.engine).state == PROMOTED
    assert capsys.readouterr().out == "experiment 1 promoted, verdict better: every replica follows within 5 s\n"
