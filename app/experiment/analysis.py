"""The primary metric per arm, the difference with an always-valid 95% confidence sequence, the verdict.

Metric. Liked titles per recommendation: the titles scored 4 or 5, with an unscored title counted as not
liked, summed over an arm's units and divided by the recommendations of those units. A unit is a person
(the request's `client`) or, without one, the recommendation itself. For one arm it is the ratio
R = sum(liked_i) / sum(recommendations_i) over units i; recommendations of one unit are correlated, so its
variance is the delta method's over units (Deng, Knoblich and Lu, "Applying the Delta Method in Metric
Analytics: A Practical Guide with Novel Ideas", KDD 2018):

    Var(R) = (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n * mean(y)^2),  x = liked, y = recommendations.

With one recommendation per unit (y = 1) it is s_x^2 / n, the variance of a mean.

Interval. D = R_candidate - R_control. The interval is the Gaussian-mixture confidence sequence, the closed
form shared by the mixture SPRT (Johari, Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring of
A/B Tests", Operations Research 2022) and the asymptotic confidence sequence (Waudby-Smith, Arbour, Sinha,
Kennedy and Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences", Annals of
Statistics 2024; also Howard, Ramdas, McAuliffe and Sekhon, Annals of Statistics 2021):

    D +- sqrt(2 v (v + tau^2) / tau^2 * (ln(1/alpha) + 0.5 ln(1 + tau^2 / v)))

with the mixing variance tau^2 = rho^2 * N * v, N the units of both arms: rho is set in units of the
per-unit standard deviation sqrt(N v), as in Waudby-Smith et al., so the width is sqrt(v) times a factor
of N alone. rho^2 = (2 ln(1/alpha) + ln(2 ln(1/alpha) + 1)) / TUNING_UNITS makes the interval narrowest
at TUNING_UNITS units (Waudby-Smith et al., section 3).

The variance v is the larger of two estimates of Var(D). One is each arm's own, Var(R_candidate) +
Var(R_control): right whatever the difference. The other is the pooled one under "no difference": both arms'
units taken as one sample, whose per-unit variance is scaled by 1/n_control + 1/n_candidate. When an arm is
small (a share of 5%) or few of its units are scored, its own variance is noisy, and a low mean comes with
a low variance: the interval then leaves zero on noise (an A/A experiment at a share of 0.05 with 2% of
recommendations scored ended `worse` 15% of the time). The pooled estimate, made mostly of the larger arm,
is steady there, and it is the variance the test of "no difference" assumes (as the mixture SPRT uses the
variance under its null). With the larger of the two, the interval stays valid under any difference, and
its test of zero holds its level at any share and scoring rate (tests/experiment/test_simulations.py).

Guarantee: with probability about 1 - alpha the true difference lies in every interval of the experiment,
however often it is read. "About", because the guarantee is asymptotic (a central limit theorem);
tests/experiment/ measures it by simulation. So it lies in their running intersection too: the interval
that `status` shows is that intersection (narrowed, its bounds kept with the experiment's record), so that
a verdict once reached is never withdrawn. An interval that does not overlap the running one (which happens
with probability below alpha when the difference is stable, so it says that the difference changes over
time, novelty for instance) leaves the running one as it was.

Verdict: `better` when the running lower bound is above 0, `worse` when its upper bound is below 0, otherwise
`undecided`. An interval narrows it only once each arm has MINIMUM_UNITS units, MINIMUM_SCORED_UNITS of them
with a score: the normal approximation needs a few scored units, not only units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

ALPHA = 0.05
# The smallest effect worth seeing, +0.3 liked titles per recommendation (about 0.12 of the per-unit
# standard deviation, 2.6), needs about this many units; a large one (the reversed ranking, about one
# standard deviation) is decided at the minimum whatever the tuning.
TUNING_UNITS = 10_000
RHO_SQUARED = (2 * math.log(1 / ALPHA) + math.log(2 * math.log(1 / ALPHA) + 1)) / TUNING_UNITS
# The interval is asymptotic: the per-unit counts are skewed, with many zeros. GrowthBook shows no result
# below 150 units per arm; the reversed ranking is decided there already. A mean resting on fewer than 30
# non-zero values is not yet near normal, whatever the number of zeros beside them.
MINIMUM_UNITS = 150
MINIMUM_SCORED_UNITS = 30
VERDICTS = ("better", "worse", "undecided")


@dataclass(frozen=True)
class Arm:
    """One arm's sums over its units: what SQL gives with a GROUP BY unit inside one outer sum.

    x_i is unit i's liked titles, y_i its recommendations. Each field is a number, or an array of one
    shape for many arms at once (the simulations read thousands of experiments in one call).
    """

    units: ArrayLike
    scored_units: ArrayLike  # units with at least one score
    liked: ArrayLike  # sum x_i: titles scored 4 or 5
    liked_squares: ArrayLike  # sum x_i^2
    recommendations: ArrayLike  # sum y_i
    recommendation_squares: ArrayLike  # sum y_i^2
    liked_times_recommendations: ArrayLike  # sum x_i y_i
    shown: ArrayLike  # titles shown
    scored: ArrayLike  # recommendations with at least one score
    scores: ArrayLike
    score_sum: ArrayLike

    @classmethod
    def from_units(
        cls,
        *,
        liked: ArrayLike,
        recommendations: ArrayLike,
        shown: ArrayLike,
        scored: ArrayLike,
        scores: ArrayLike,
        score_sum: ArrayLike,
    ) -> Arm:
        """An arm from per-unit arrays, one entry per unit (`scored`: its recommendations with a score)."""
        x, y = np.asarray(liked, dtype=float), np.asarray(recommendations, dtype=float)
        return cls(
            units=x.size,
            scored_units=np.count_nonzero(scored),
            liked=x.sum(),
            liked_squares=(x * x).sum(),
            recommendations=y.sum(),
            recommendation_squares=(y * y).sum(),
            liked_times_recommendations=(x * y).sum(),
            shown=np.sum(shown),
            scored=np.sum(scored),
            scores=np.sum(scores),
            score_sum=np.sum(score_sum),
        )


def pooled(control: Arm, candidate: Arm) -> Arm:
    """Both arms' units as one sample: what the arms would be if the candidate made no difference."""
    return Arm(**{name: np.add(value, getattr(candidate, name)) for name, value in vars(control).items()})


def metric(arm: Arm) -> tuple[NDArray, NDArray]:
    """Liked titles per recommendation and its delta-method variance (nan below two units)."""
    n = np.asarray(arm.units, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(arm.liked, dtype=float) / np.asarray(arm.recommendations, dtype=float)
        mean_y = np.asarray(arm.recommendations, dtype=float) / n
        # Sample (co)variances over units from the sums: s_ab = (sum ab - n mean(a) mean(b)) / (n - 1).
        s_xx = (arm.liked_squares - np.square(arm.liked) / n) / (n - 1)
        s_yy = (arm.recommendation_squares - np.square(arm.recommendations) / n) / (n - 1)
        s_xy = (arm.liked_times_recommendations - np.multiply(arm.liked, arm.recommendations) / n) / (n - 1)
        variance = (s_xx - 2 * ratio * s_xy + ratio**2 * s_yy) / (n * mean_y**2)
    # Rounding in the sums can leave a true zero slightly negative.
    return ratio, np.maximum(variance, 0.0)


def width_factor(units: ArrayLike) -> NDArray:
    """The confidence sequence's half-width over sqrt(v) after `units` units of both arms."""
    mixing = RHO_SQUARED * np.asarray(units, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # no units: nan, never a verdict
        return np.sqrt(2 * (1 + mixing) / mixing * (math.log(1 / ALPHA) + 0.5 * np.log1p(mixing)))


@dataclass(frozen=True)
class Comparison:
    """Candidate minus control at one read; arrays when the arms hold arrays."""

    difference: NDArray
    variance: NDArray  # the larger of the arms' own and the pooled one
    lower: NDArray
    upper: NDArray
    enough: NDArray  # whether each arm has the units and scored units an interval needs to count
    verdict: NDArray  # of VERDICTS, from this read's interval alone


def compare(control: Arm, candidate: Arm) -> Comparison:
    control_metric, control_variance = metric(control)
    candidate_metric, candidate_variance = metric(candidate)
    difference = candidate_metric - control_metric
    units = np.add(control.units, candidate.units)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty arm: nan, as its own variance is
        # The pooled mean's variance times N is the per-unit variance; each arm's mean has it over its units.
        scale = units * (1 / np.asarray(control.units, dtype=float) + 1 / np.asarray(candidate.units, dtype=float))
        null_variance = metric(pooled(control, candidate))[1] * scale
    variance = np.maximum(control_variance + candidate_variance, null_variance)
    half_width = width_factor(units) * np.sqrt(variance)
    lower, upper = difference - half_width, difference + half_width
    enough = np.ones_like(difference, dtype=bool)
    for arm in (control, candidate):
        enough &= (np.asarray(arm.units) >= MINIMUM_UNITS) & (np.asarray(arm.scored_units) >= MINIMUM_SCORED_UNITS)
    decided = np.where(enough, lower, np.nan), np.where(enough, upper, np.nan)
    return Comparison(difference, variance, lower, upper, enough, verdict(*decided))


def verdict(lower: ArrayLike, upper: ArrayLike) -> NDArray:
    """The verdict an interval gives (nan bounds compare False: undecided)."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    return np.where(lower > 0, "better", np.where(upper < 0, "worse", "undecided"))


def narrowed(running_lower: ArrayLike, running_upper: ArrayLike, comparison: Comparison) -> tuple[NDArray, NDArray]:
    """The running interval after one more read: its intersection with the read's interval (nan: none yet).

    A read that does not count yet (too few units), or whose interval does not overlap the running one,
    leaves it as it was.
    """
    running_lower, running_upper = np.asarray(running_lower, dtype=float), np.asarray(running_upper, dtype=float)
    overlaps = ~(running_lower > comparison.upper) & ~(running_upper < comparison.lower)
    counts = comparison.enough & np.isfinite(comparison.lower) & np.isfinite(comparison.upper) & overlaps
    return (
        np.where(counts, np.fmax(running_lower, comparison.lower), running_lower),
        np.where(counts, np.fmin(running_upper, comparison.upper), running_upper),
    )


def units_needed(control: Arm, candidate: Arm, share: float) -> int | None:
    """How many more units (both arms, at `share` for the candidate) an undecided experiment needs.

    Assumes the estimate and the per-unit variance N v stay as they are: then the half-width after N'
    units is width_factor(N') sqrt(N v / N'), and N' solves half-width = |D|. None (unknown) when the
    estimate is 0, or it or its variance is not defined yet (fewer than two units in an arm), or an arm has
    no scored unit yet. 0 once this read decides. One number: scalar arms only.
    """
    comparison = compare(control, candidate)
    if str(comparison.verdict) != "undecided":
        return 0
    difference, units = abs(float(comparison.difference)), int(control.units) + int(candidate.units)
    variance = float(comparison.variance)
    if not (difference > 0 and math.isfinite(variance)):
        return None
    per_unit_sd = math.sqrt(variance * units)

    def excess(log_units: float) -> float:
        n = math.exp(log_units)
        return float(width_factor(n)) * per_unit_sd / math.sqrt(n) - difference

    target = units
    if excess(math.log(units)) > 0:
        # The half-width shrinks like sqrt(ln N / N): at 1e15 units it is 2e-7 per-unit sd: beyond, say unknown.
        if excess(math.log(1e15)) > 0:
            return None
        target = math.exp(brentq(excess, math.log(units), math.log(1e15)))
    shortfalls = [units_short(control, 1 - share), units_short(candidate, share)]
    if None in shortfalls:
        return None
    return max(math.ceil(target) - units, *(math.ceil(short) for short in shortfalls), 0)


def units_short(arm: Arm, share: float) -> float | None:
    """Units of both arms until this one (taking `share` of them) has the units and scored units a verdict
    needs, at its scoring rate so far; None while it has no scored unit to tell the rate."""
    units, scored = int(arm.units), int(arm.scored_units)
    short = MINIMUM_UNITS - units
    if scored < MINIMUM_SCORED_UNITS:
        if scored == 0:
            return None
        short = max(short, (MINIMUM_SCORED_UNITS - scored) * units / scored)
    return short / share
