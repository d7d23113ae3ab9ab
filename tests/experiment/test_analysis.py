"""Every figure of the analysis recomputed by another route, and each check shown to fail on a wrong value."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from app.experiment.analysis import ALPHA, MINIMUM_UNITS, TUNING_UNITS, Arm, compare, metric, units_needed
from app.experiment.sample_ratio import sample_ratio_p
from app.experiment.summary import summary
from tests.experiment.population import CONCENTRATION, TITLES, Population

SERVED = Population.with_moments(4.23, 2.56)


def close(value: float, expected: float, tolerance: float = 1e-9) -> bool:
    return math.isclose(value, expected, rel_tol=tolerance)


def arm_of(liked: list[int] | np.ndarray, recommendations: list[int] | np.ndarray | None = None) -> Arm:
    """An arm of units with these liked titles (and recommendations, one each unless given)."""
    liked = np.asarray(liked)
    recommendations = np.ones_like(liked) if recommendations is None else np.asarray(recommendations)
    return Arm.from_units(liked=liked, recommendations=recommendations, shown=TITLES * recommendations,
                          scored=liked > 0, scores=liked, score_sum=4 * liked)  # fmt: skip


@pytest.fixture(scope="module")
def one_each() -> tuple[list[int], list[int]]:
    """Liked titles of 300 control and 320 candidate units of one recommendation each, as Python ints (the
    statistics module computes in the type it is given)."""
    rng = np.random.default_rng(31)
    ones = np.ones(320, dtype=int)
    candidate = Population.with_moments(4.5, 2.6).liked(rng, ones, people=False)
    return SERVED.liked(rng, ones[:300], people=False).tolist(), candidate.tolist()


def test_for_one_recommendation_per_unit_the_variance_is_that_of_a_mean(one_each: tuple) -> None:
    liked = one_each[0]
    ratio, variance = metric(arm_of(liked))
    assert close(float(ratio), statistics.fmean(liked))
    assert close(float(variance), statistics.variance(liked) / len(liked))
    assert not close(float(variance), statistics.pvariance(liked) / len(liked))  # n, not n - 1: caught


def test_for_people_the_delta_method_variance_matches_a_bootstrap_over_people() -> None:
    """A per-recommendation variance, which treats a person's recommendations as independent, is too small."""
    rng = np.random.default_rng(32)
    people = 2000
    recommendations = 1 + rng.poisson(2, people)
    person = np.repeat(np.arange(people), recommendations)
    liking = rng.beta(SERVED.liking * CONCENTRATION, (1 - SERVED.liking) * CONCENTRATION, people)
    per_recommendation = rng.binomial(TITLES * (rng.random(person.size) < SERVED.engaged), liking[person])
    liked = np.bincount(person, weights=per_recommendation, minlength=people)
    ratio, variance = metric(arm_of(liked, recommendations))
    assert close(float(ratio), per_recommendation.mean())
    draws = rng.integers(0, people, (2000, people))
    bootstrap = np.var(liked[draws].sum(axis=1) / recommendations[draws].sum(axis=1), ddof=1)
    assert close(float(variance), bootstrap, 0.1)
    assert not close(float(per_recommendation.var(ddof=1) / person.size), bootstrap, 0.1)


def test_the_interval_is_the_gaussian_mixture_confidence_sequence_by_hand(one_each: tuple) -> None:
    """By the formula of shared/EXPERIMENT-NOTES.md, with tau^2 = rho^2 N v."""
    control, candidate = one_each
    comparison = compare(arm_of(control), arm_of(candidate))
    difference = statistics.fmean(candidate) - statistics.fmean(control)
    v = statistics.variance(control) / len(control) + statistics.variance(candidate) / len(candidate)
    rho2 = (2 * math.log(1 / 0.05) + math.log(2 * math.log(1 / 0.05) + 1)) / 10_000
    tau2 = rho2 * (len(control) + len(candidate)) * v
    half = math.sqrt(2 * v * (v + tau2) / tau2 * (math.log(1 / 0.05) + 0.5 * math.log(1 + tau2 / v)))
    assert (ALPHA, TUNING_UNITS) == (0.05, 10_000)
    assert close(float(comparison.lower), difference - half)
    assert close(float(comparison.upper), difference + half)
    assert not close(float(comparison.upper), difference + 1.96 * math.sqrt(v))  # the fixed-sample one: caught


@pytest.mark.parametrize(
    ("control", "candidate", "verdict"),
    [
        ([4, 5] * 75, [7, 8] * 75, "better"),
        ([4, 5] * 75, [1, 2] * 75, "worse"),
        ([4, 5] * 75, [3, 7] * 75, "undecided"),  # +0.5 at 300 units, with a wide spread: within the interval
        ([4, 5] * 75, [7, 8] * 74 + [7], "undecided"),  # 149 units in an arm: too few for any verdict
        ([4, 5] * 75, [4, 5] * 75, "undecided"),
    ],
)
def test_the_verdict_follows_the_interval_once_each_arm_has_150_units(control: list, candidate: list,
                                                                     verdict: str) -> None:  # fmt: skip
    comparison = compare(arm_of(control), arm_of(candidate))
    assert MINIMUM_UNITS == 150
    assert str(comparison.verdict) == verdict


def test_the_units_needed_would_just_exclude_zero_if_estimate_and_variance_per_unit_held(one_each: tuple) -> None:
    control, candidate = arm_of(one_each[0]), arm_of(one_each[1])
    comparison = compare(control, candidate)
    assert str(comparison.verdict) == "undecided"
    more, units = units_needed(control, candidate, 0.5), 620
    per_unit_variance = float(comparison.variance) * units

    def excludes_zero(total: int) -> bool:
        return compare_at(total) < abs(float(comparison.difference))

    def compare_at(total: int) -> float:
        """The half-width at `total` units by the hand formula, the variance shrinking as 1/total."""
        v = per_unit_variance / total
        tau2 = (2 * math.log(20) + math.log(2 * math.log(20) + 1)) / 10_000 * total * v
        return math.sqrt(2 * v * (v + tau2) / tau2 * (math.log(20) + 0.5 * math.log(1 + tau2 / v)))

    assert more is not None
    assert excludes_zero(units + more)
    assert not excludes_zero(units + more - 1)


def test_no_units_needed_once_decided_and_unknown_at_a_zero_estimate() -> None:
    assert units_needed(arm_of([4, 5] * 75), arm_of([7, 8] * 75), 0.5) == 0
    assert units_needed(arm_of([4, 5] * 75), arm_of([5, 4] * 75), 0.5) is None
    # Too few units: at least enough for the minimum in each arm.
    assert units_needed(arm_of([4, 5] * 50), arm_of([7, 8] * 50), 0.5) == 2 * (MINIMUM_UNITS - 100)


def test_the_sample_ratio_p_value_is_the_chi_square_of_one_degree_of_freedom_by_hand() -> None:
    control, candidate, share = 560, 440, 0.5
    chi2 = (control - 500) ** 2 / 500 + (candidate - 500) ** 2 / 500
    p = math.erfc(math.sqrt(chi2 / 2))  # the chi-square tail with one degree of freedom
    assert close(float(sample_ratio_p(control, candidate, share)), p)
    assert close(float(sample_ratio_p(560, 440, 0.44)), 1.0)
    assert math.isnan(float(sample_ratio_p(7, 440, share)))  # fewer than 8 units in an arm


def test_the_summary_is_strict_json_with_stable_keys_and_recounted_figures() -> None:
    control, candidate = arm_of([0, 2, 5, 0] * 40, [1, 2, 1, 1] * 40), arm_of([0, 3, 6, 1] * 41)
    result = json.loads(json.dumps(summary(control, candidate, 0.5), allow_nan=False))
    assert set(result) == {"metric_name", "share", "arms", "difference", "interval", "confidence", "verdict",
                           "minimum_units", "units_needed", "srm_p", "srm"}  # fmt: skip
    assert set(result["arms"]["control"]) == {"units", "recommendations", "shown", "scored", "scored_share",
                                              "scores", "mean_score", "metric"}  # fmt: skip
    recounted = {"units": 160, "recommendations": 200, "shown": 2000, "scored": 80, "scored_share": 0.4, "scores": 280,
                 "mean_score": 4.0, "metric": 1.4}  # fmt: skip
    assert result["arms"]["control"] == recounted
    assert result["arms"]["candidate"]["metric"] == 2.5
    assert close(result["difference"], 1.1)
    assert result["verdict"] == str(compare(control, candidate).verdict)
    assert result["share"] == 0.5 and close(result["srm_p"], math.erfc(math.sqrt((160 - 162) ** 2 / 81 / 2)))


def test_the_summary_of_an_empty_experiment_has_nulls_not_nan() -> None:
    result = json.loads(json.dumps(summary(arm_of([]), arm_of([3]), 0.5), allow_nan=False))
    assert result["arms"]["control"]["metric"] is None and result["arms"]["control"]["mean_score"] is None
    assert (result["interval"], result["srm_p"], result["units_needed"]) == (None, None, None)
    assert result["verdict"] == "undecided"
