"""An experiment's figures per unit, from the log, against the same sums made by hand in Python."""

from __future__ import annotations

import random
from collections import defaultdict

from app.experiment.arms import CANDIDATE, CONTROL
from app.experiment.units import units_by_arm
from app.store.recommendation_log import RecommendationLog

TITLES = [f"Movie {number} (1990)" for number in range(10)]


def test_units_add_up_each_arms_recommendations_and_scores(log: RecommendationLog) -> None:
    draw = random.Random(3)
    expected = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0.0, 0]))  # arm -> unit -> figures
    for number in range(300):
        arm = draw.choice([CONTROL, CANDIDATE])
        client = draw.choice([None, None, f"person-{number % 17}"])
        experiment_id = draw.choice([1, 1, 1, 2])  # another experiment's rows must not count
        recommendation_id = log.record_recommendation(
            age=30, gender="F", occupation="writer", max_recs=10, titles=TITLES, model_version="v" * 64,
            client=client, experiment_id=experiment_id, arm=arm,
        )  # fmt: skip
        given = [draw.choice([1, 2, 3, 3.5, 4, 4.5, 5]) for _ in range(draw.choice([0, 0, 1, 3, 10]))]
        for movie, score in zip(TITLES, given, strict=False):
            log.record_score(recommendation_id=recommendation_id, movie=movie, score=score)
        if experiment_id == 1:
            figures = expected[arm][client or recommendation_id]
            figures[0] += 1
            figures[1] += bool(given)
            figures[2] += len(given)
            figures[3] += sum(given)
            figures[4] += sum(score >= 4 for score in given)
    found = units_by_arm(log.engine, 1)
    for arm in (CONTROL, CANDIDATE):
        units = list(expected[arm].values())  # [recommendations, scored, scores, score sum, liked] per unit
        summed = found[arm]
        # The squares and products tell units apart: a row counted in the wrong unit changes them.
        assert summed.scored_units == sum(u[1] > 0 for u in units)  # units with a scored recommendation
        assert (summed.units, summed.recommendations, summed.scored, summed.scores) == (
            len(units),
            sum(u[0] for u in units),
            sum(u[1] for u in units),
            sum(u[2] for u in units),
        )
        # Halves add up exactly in binary floating point: the sums can be compared exactly.
        assert (summed.score_sum, summed.liked, summed.shown) == (
            sum(u[3] for u in units),
            sum(u[4] for u in units),
            10 * sum(u[0] for u in units),
        )
        assert (summed.liked_squares, summed.recommendation_squares, summed.liked_times_recommendations) == (
            sum(u[4] ** 2 for u in units),
            sum(u[0] ** 2 for u in units),
            sum(u[4] * u[0] for u in units),
        )


def test_an_experiment_without_recommendations_has_no_units(log: RecommendationLog) -> None:
    found = units_by_arm(log.engine, 9)
    assert [found[arm].units for arm in (CONTROL, CANDIDATE)] == [0, 0]
