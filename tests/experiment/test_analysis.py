"""Every figure of the analysis recomputed by another route, and each check shown to fail on a wrong value."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
from savvi.multinomial import Multinomial
from scipy.integrate import quad
from scipy.optimize import minimize_scalar
from scipy.stats import norm as normal

from app.experiment.analysis import (
    ALPHA,
    MINIMUM_SCORED_UNITS,
    MINIMUM_UNITS,
    RHO_SQUARED,
    TUNING_UNITS,
    Arm,
    compare,
    metric,
    units_needed,
    verdict,
    width_factor,
)
from app.experiment.sample_ratio import PRIOR_CONCENTRATION, SRM_ALPHA, sample_ratio_p
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
    candidate, _ = Population.with_moments(4.5, 2.6).liked(rng, ones, people=False)
    return SERVED.liked(rng, ones[:300], people=False)[0].tolist(), candidate.tolist()


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


def mixture_likelihood_ratio(gap: float, v: float, tau2: float) -> float:
    """The Gaussian mixture of likelihood ratios at an estimate `gap` away from a true difference, by numerical
    integration over the alternative's offset: the definition the closed form of the interval solves."""

    def integrand(offset: float) -> float:
        return math.exp(offset * gap / v - offset**2 / (2 * v)) * normal.pdf(offset, scale=math.sqrt(tau2))

    return quad(integrand, -40 * math.sqrt(tau2), 40 * math.sqrt(tau2), points=[0.0, gap], limit=200)[0]


def test_the_interval_ends_where_the_gaussian_mixture_reaches_1_over_alpha_by_numerical_integration(
    one_each: tuple,
) -> None:
    """The confidence sequence is every difference whose mixture martingale is below 1/alpha (Johari et al.;
    Howard et al.): integrated with scipy's quad, not from the closed form the code uses."""
    control, candidate = one_each
    comparison = compare(arm_of(control), arm_of(candidate))
    own = statistics.variance(control) / len(control) + statistics.variance(candidate) / len(candidate)
    pooled = statistics.variance(control + candidate) * (1 / len(control) + 1 / len(candidate))
    v = max(own, pooled)
    assert close(float(comparison.variance), v)
    tau2 = RHO_SQUARED * (len(control) + len(candidate)) * v
    gap = float(comparison.difference - comparison.lower)
    assert close(float(comparison.upper - comparison.difference), gap)
    assert close(mixture_likelihood_ratio(gap, v, tau2), 1 / ALPHA, 1e-6)
    assert mixture_likelihood_ratio(0.999 * gap, v, tau2) < 1 / ALPHA < mixture_likelihood_ratio(1.001 * gap, v, tau2)
    assert gap > 1.2 * 1.96 * math.sqrt(v)  # wider than the fixed-sample interval: the price of peeking


def test_the_mixing_variance_makes_the_interval_narrowest_at_the_tuning_units() -> None:
    """Minimised numerically over the mixing variance: Waudby-Smith et al.'s closed-form choice is within 5%
    of the optimum, and the interval it gives within 0.1% of the narrowest."""
    assert (ALPHA, TUNING_UNITS) == (0.05, 10_000)

    def width(log_rho2: float) -> float:
        tau2 = math.exp(log_rho2) * TUNING_UNITS  # per unit of v
        return math.sqrt(2 * (1 + tau2) / tau2 * (math.log(1 / ALPHA) + 0.5 * math.log1p(tau2)))

    best = minimize_scalar(width, bounds=(-20, 0), method="bounded")
    assert close(math.exp(best.x), RHO_SQUARED, 0.05)
    assert close(float(width_factor(TUNING_UNITS)), best.fun, 1e-3)


def test_a_small_arm_with_few_scored_units_gets_the_pooled_variance_under_no_difference() -> None:
    """Its own variance is near zero (one liked title among 200 units); the pooled one is that of all units as
    one sample, over each arm's units."""
    control, candidate = [0] * 1900 + [3, 5, 2] * 100, [0] * 199 + [1]
    comparison = compare(arm_of(control), arm_of(candidate))
    own = statistics.variance(control) / len(control) + statistics.variance(candidate) / len(candidate)
    pooled = statistics.variance(control + candidate) * (1 / len(control) + 1 / len(candidate))
    assert pooled > 3 * own
    assert close(float(comparison.variance), pooled)


@pytest.mark.parametrize(
    ("control", "candidate", "verdict"),
    [
        ([4, 5] * 75, [7, 8] * 75, "better"),
        ([4, 5] * 75, [1, 2] * 75, "worse"),
        ([4, 5] * 75, [3, 7] * 75, "undecided"),  # +0.5 at 300 units, with a wide spread: within the interval
        ([4, 5] * 75, [7, 8] * 74 + [7], "undecided"),  # 149 units in an arm: too few for any verdict
        ([4, 5] * 75, [0] * 270 + [1, 2] * 15, "worse"),  # 30 of its 300 units scored: enough
        ([4, 5] * 75, [0] * 271 + [1, 2] * 14 + [1], "undecided"),  # 29 scored units: too few for any verdict
        ([4, 5] * 75, [4, 5] * 75, "undecided"),
    ],
)
def test_the_verdict_follows_the_interval_once_each_arm_has_150_units(control: list, candidate: list,
                                                                     verdict: str) -> None:  # fmt: skip
    comparison = compare(arm_of(control), arm_of(candidate))
    assert (MINIMUM_UNITS, MINIMUM_SCORED_UNITS) == (150, 30)
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


def test_the_sample_ratio_p_value_is_savvis_sequential_multinomial_test_batch_after_batch() -> None:
    """savvi's Multinomial (Lindon and Malek) multiplies its Bayes factor one batch at a time; the closed form
    from the running counts must give the same p-value after every batch."""
    rng = np.random.default_rng(33)
    for share, drawn in ((0.5, 0.5), (0.1, 0.1), (0.1, 0.13)):
        test = Multinomial(SRM_ALPHA, np.array([1 - share, share]), k=PRIOR_CONCENTRATION)
        counts = np.zeros(2)
        for _ in range(40):
            candidate = rng.binomial(100, drawn)
            batch = np.array([100 - candidate, candidate])
            test.update(batch)
            counts += batch
            assert close(float(sample_ratio_p(counts[0], counts[1], share)), min(1.0, 1 / test.odds), 1e-7)
    assert test.odds > 1 / SRM_ALPHA  # 13% of units where 10% belong: flagged by 4,000 units
    assert float(sample_ratio_p(0, 0, 0.5)) == 1.0


def test_the_summary_is_strict_json_with_stable_keys_and_recounted_figures() -> None:
    control, candidate = arm_of([0, 2, 5, 0] * 40, [1, 2, 1, 1] * 40), arm_of([0, 3, 6, 1] * 41)
    comparison = compare(control, candidate)
    running = (float(comparison.lower) - 0.5, float(comparison.upper) + 0.25)
    result = json.loads(json.dumps(summary(control, candidate, 0.5, comparison, running), allow_nan=False))
    assert set(result) == {"metric_name", "share", "arms", "difference", "interval", "latest_interval",
                           "confidence", "verdict", "minimum_units", "minimum_scored_units", "units_needed", "srm_p",
                           "srm"}  # fmt: skip
    assert set(result["arms"]["control"]) == {"units", "scored_units", "recommendations", "shown", "scored",
                                              "scored_share", "scores", "mean_score", "metric"}  # fmt: skip
    recounted = {"units": 160, "scored_units": 80, "recommendations": 200, "shown": 2000, "scored": 80,
                 "scored_share": 0.4, "scores": 280, "mean_score": 4.0, "metric": 1.4}  # fmt: skip
    assert result["arms"]["control"] == recounted
    assert result["arms"]["candidate"]["metric"] == 2.5
    assert close(result["difference"], 1.1)
    assert result["interval"] == list(running) and result["verdict"] == str(verdict(*running))
    assert result["latest_interval"] == [float(comparison.lower), float(comparison.upper)]
    assert result["share"] == 0.5 and result["srm_p"] == float(sample_ratio_p(160, 164, 0.5))


def test_the_summary_of_an_empty_experiment_has_nulls_not_nan() -> None:
    control, candidate = arm_of([]), arm_of([3])
    result = json.loads(
        json.dumps(summary(control, candidate, 0.5, compare(control, candidate), (math.nan, math.nan)), allow_nan=False)
    )
    assert result["arms"]["control"]["metric"] is None and result["arms"]["control"]["mean_score"] is None
    assert (result["interval"], result["latest_interval"], result["units_needed"]) == (None, None, None)
    assert result["verdict"] == "undecided"
