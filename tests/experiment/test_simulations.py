"""The analysis proved by simulation: A/A false verdicts and sample-ratio stops under peeking, at every share
and scoring rate; power; verdicts that stay.

Each figure is printed (pytest -s shows it) and bounded. Units come from tests/experiment/population.py:
liked titles per recommendation as measured offline (4.23, sd 2.56; the reversed ranking 1.72, sd 1.86),
with the share of recommendations scored set apart from the liking of what is scored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

import numpy as np
import pytest
from scipy.stats import binomtest, t

from app.experiment.analysis import MINIMUM_UNITS, Comparison, compare, narrowed, verdict
from app.experiment.sample_ratio import mismatched, sample_ratio_p
from tests.experiment.population import TITLES, Population, looks, paths

# Tens of seconds of simulation: .ci/run runs them; the image's build leaves them out.
pytestmark = pytest.mark.slow
SERVED = Population.with_moments(4.23, 2.56)
REVERSED = Population.with_moments(1.72, 1.86)
SLIGHTLY_BETTER = Population.with_moments(4.53, 2.56)  # +0.3 liked titles per recommendation
EXPERIMENTS = 1000
AA_UNITS = 5000
DESIGNS = {"one recommendation per unit": False, "people with 1 + Poisson(2) recommendations": True}
# The grid of SPEC section 9: an A/A experiment ends `worse` at most 2.5% of the time and is stopped for a
# sample-ratio mismatch at most 0.1% of the time, read as often as the guardrail reads it.
SHARES = (0.05, 0.1, 0.5)
SCORED = (0.02, 0.1, 0.8)
GRID_EXPERIMENTS = 2000
GRID_UNITS = 20_000
EVERY = 10  # units between two reads
CHUNK = 500  # experiments simulated at once (about 300 MB)
WORSE_BOUND, SRM_BOUND = 0.025, 0.001


@dataclass
class Outcomes:
    """Per experiment, over all its reads: the first verdict of the running interval and the read it came at
    (-1: none), whether a later read said otherwise, whether a read's own interval ever gave a verdict and
    later did not, and whether the sample-ratio check stopped it."""

    first_read: np.ndarray
    first_verdict: np.ndarray
    withdrawn: np.ndarray
    alone_withdrawn: np.ndarray
    srm_stop: np.ndarray

    def rate(self, what: str) -> float:
        return float(np.mean(self.first_verdict == what))


def read(comparison: Comparison, index: int) -> Comparison:
    """One read of every experiment, out of a comparison of all reads."""
    return Comparison(**{field.name: getattr(comparison, field.name)[:, index] for field in fields(Comparison)})


def simulate(
    seed: int, control: Population, candidate: Population, *, experiments: int, units: int, share: float
) -> Outcomes:
    """Experiments read after every EVERY units, the running interval narrowed at each read as the guardrail
    narrows it (app/experiment/analysis.py `narrowed`)."""
    rng = np.random.default_rng(seed)
    chunks = []
    for start in range(0, experiments, CHUNK):
        size = min(CHUNK, experiments - start)
        control_arm, candidate_arm = paths(rng, control, candidate, experiments=size, units=units, share=share,
                                           every=EVERY)  # fmt: skip
        comparison = compare(control_arm, candidate_arm)
        lower, upper = np.full(size, np.nan), np.full(size, np.nan)
        first_read, first = np.full(size, -1), np.full(size, "undecided")
        withdrawn, alone_reached, alone_withdrawn = (np.zeros(size, dtype=bool) for _ in range(3))
        for index in range(units // EVERY):
            now = read(comparison, index)
            lower, upper = narrowed(lower, upper, now)
            said = verdict(lower, upper)
            new = (said != "undecided") & (first_read < 0)
            first_read[new], first[new] = index, said[new]
            withdrawn |= (first_read >= 0) & (said != first)
            alone_reached |= now.verdict != "undecided"
            alone_withdrawn |= alone_reached & (now.verdict == "undecided")
        srm_stop = mismatched(sample_ratio_p(control_arm.units, candidate_arm.units, share)).any(axis=1)
        chunks.append(Outcomes(first_read, first, withdrawn, alone_withdrawn, srm_stop))
    return Outcomes(*(np.concatenate([getattr(chunk, field.name) for chunk in chunks]) for field in fields(Outcomes)))


def interval(count: int, trials: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95% interval of a rate."""
    found = binomtest(count, trials).proportion_ci(0.95)
    return found.low, found.high


@pytest.mark.parametrize("scored", SCORED)
def test_the_simulated_units_have_the_scoring_rate_and_the_measured_liking(scored: float) -> None:
    control, candidate = paths(np.random.default_rng(5), SERVED.scoring(scored), SLIGHTLY_BETTER.scoring(scored),
                               experiments=20, units=20_000, share=0.5)  # fmt: skip
    for arm, population in ((control, SERVED), (candidate, SLIGHTLY_BETTER)):
        units, liked = arm.units[:, -1].sum(), arm.liked[:, -1].sum()
        assert arm.scored_units[:, -1].sum() / units == pytest.approx(scored, rel=0.02)
        # The liking of what is scored stays the measured one: 4.23 (4.53) liked titles per scored one at 80%.
        assert liked / units == pytest.approx(scored * TITLES * population.liking, rel=0.03)
        second_moment = TITLES * population.liking * (1 - population.liking) + (TITLES * population.liking) ** 2
        assert arm.liked_squares[:, -1].sum() / units == pytest.approx(scored * second_moment, rel=0.03)
    assert SERVED.engaged * TITLES * SERVED.liking == pytest.approx(4.23)


@pytest.fixture(scope="module")
def grid() -> dict[tuple[float, float], Outcomes]:
    """A/A experiments at every point of the grid, read after every 10 units up to 20,000."""
    outcomes = {}
    for number, (share, scored) in enumerate((share, scored) for share in SHARES for scored in SCORED):
        population = SERVED.scoring(scored)
        outcomes[share, scored] = found = simulate(
            100 + number, population, population, experiments=GRID_EXPERIMENTS, units=GRID_UNITS, share=share
        )
        counts = {what: int(np.sum(found.first_verdict == what)) for what in ("worse", "better")}
        stops = int(found.srm_stop.sum())
        print(f"A/A share {share}, {scored:.0%} scored, {GRID_EXPERIMENTS} experiments: worse {counts['worse']} "
              f"{interval(counts['worse'], GRID_EXPERIMENTS)}, better {counts['better']}, sample-ratio stops "
              f"{stops} {interval(stops, GRID_EXPERIMENTS)}")  # fmt: skip
    return outcomes


@pytest.mark.parametrize("scored", SCORED)
@pytest.mark.parametrize("share", SHARES)
def test_an_aa_experiment_ends_worse_at_most_2_5_percent_of_the_time_at_any_share_and_scoring_rate(
    grid: dict, share: float, scored: float
) -> None:
    """The rate's whole 95% interval is below the bound: the simulation shows it, not only fails to refute it."""
    worse = int(np.sum(grid[share, scored].first_verdict == "worse"))
    assert interval(worse, GRID_EXPERIMENTS)[1] <= WORSE_BOUND, worse


@pytest.mark.parametrize("share", SHARES)
def test_an_aa_experiment_is_stopped_for_its_sample_ratio_at_most_0_1_percent_of_the_time(
    grid: dict, share: float
) -> None:
    """The assignment does not depend on scores, so each share pools its three scoring rates: 6,000
    experiments. Ville's inequality bounds the rate by 0.1% exactly; the count must agree (its 95% interval
    reaching below 0.1%), where the chi-square it replaces stopped 2 to 4% of them."""
    stops = sum(int(grid[share, scored].srm_stop.sum()) for scored in SCORED)
    trials = len(SCORED) * GRID_EXPERIMENTS
    print(f"sample-ratio stops at share {share}: {stops} of {trials}, 95% interval {interval(stops, trials)}")
    assert interval(stops, trials)[0] <= SRM_BOUND, stops


def test_a_verdict_reached_stays_reached_though_each_reads_own_interval_comes_back_over_zero(grid: dict) -> None:
    outcomes = list(grid.values())
    reached = sum(int(np.sum(found.first_read >= 0)) for found in outcomes)
    assert reached > 100  # enough verdicts for the claim to mean something
    assert not any(found.withdrawn.any() for found in outcomes)
    # Without the running intersection, most verdicts would have been withdrawn later.
    alone = sum(int(found.alone_withdrawn.sum()) for found in outcomes)
    print(f"A/A verdicts reached {reached}, withdrawn 0; a read's own interval withdrew {alone}")
    assert alone > reached / 2


@pytest.fixture(scope="module")
def power() -> dict[float, Outcomes]:
    """A candidate better by 0.3 liked titles per recommendation, at the measured scoring rate (80%)."""
    return {share: simulate(7, SERVED, SLIGHTLY_BETTER, experiments=500, units=units, share=share)
            for share, units in ((0.1, 25_000), (0.5, 10_000))}  # fmt: skip


@pytest.mark.parametrize(("share", "within"), [(0.1, 20_000), (0.5, 7_000)])
def test_a_candidate_better_by_0_3_is_found_better_in_95_percent_of_experiments_within_the_units_stated(
    power: dict, share: float, within: int
) -> None:
    """README "Trying a new model on live traffic" states these numbers of units."""
    found = power[share]
    units = np.where(found.first_read >= 0, (found.first_read + 1) * EVERY, np.inf)
    better = found.first_verdict == "better"
    print(f"+0.3 at share {share}: better {better.mean():.1%}, worse {found.rate('worse'):.1%}; units to better: "
          f"median {np.median(units[better]):.0f}, 95th percentile {np.percentile(units, 95):.0f}")  # fmt: skip
    assert np.mean(better & (units <= within)) >= 0.95
    assert found.rate("worse") == 0


@pytest.fixture(scope="module", params=DESIGNS.values(), ids=DESIGNS.keys())
def aa(request: pytest.FixtureRequest) -> dict[str, float]:
    """The share of A/A experiments that ever reach a verdict (the confidence sequence, a fixed-sample
    t-interval), read after every 50 units up to 5,000."""
    rng = np.random.default_rng(21)
    verdict_reached, naive = (np.zeros(EXPERIMENTS, dtype=bool) for _ in range(2))
    for _, control, candidate in looks(rng, SERVED, SERVED, experiments=EXPERIMENTS, units=AA_UNITS,
                                       people=request.param):  # fmt: skip
        comparison = compare(control, candidate)
        verdict_reached |= comparison.verdict != "undecided"
        enough = (control.units >= MINIMUM_UNITS) & (candidate.units >= MINIMUM_UNITS)
        quantile = t.ppf(0.975, control.units + candidate.units - 2)
        naive |= enough & (np.abs(comparison.difference) > quantile * np.sqrt(comparison.variance))
    rates = {"verdict": float(verdict_reached.mean()), "naive": float(naive.mean())}
    print(f"A/A, {EXPERIMENTS} experiments, people={request.param}: {rates}")
    return rates


def test_an_aa_experiment_read_after_every_50_units_reaches_a_verdict_at_most_5_percent_of_the_time(aa: dict) -> None:
    assert aa["verdict"] <= 0.05


def test_a_fixed_sample_t_interval_read_as_often_declares_a_difference_far_more_often(aa: dict) -> None:
    """The A/A test can fail: the interval that ignores peeking fails it."""
    assert aa["naive"] > 0.15


def units_to_verdict(candidate: Population, units: int, people: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per experiment: the units at the first look with a verdict (inf if none), and that verdict."""
    rng = np.random.default_rng(22)
    first = np.full(EXPERIMENTS, np.inf)
    found = np.full(EXPERIMENTS, "undecided", dtype=object)
    for done, control, candidate_arm in looks(rng, SERVED, candidate, experiments=EXPERIMENTS, units=units,
                                              people=people):  # fmt: skip
        now = compare(control, candidate_arm).verdict
        new = (now != "undecided") & np.isinf(first)
        first[new], found[new] = done, now[new]
    print(f"units to a verdict: median {np.median(first)} units, 95th percentile "
          f"{np.percentile(first, 95)}, first verdicts {Counter(found)}")  # fmt: skip
    return first, found


@pytest.mark.parametrize("people", DESIGNS.values(), ids=DESIGNS.keys())
def test_the_reversed_ranking_is_found_worse_within_400_units(people: bool) -> None:
    first, found = units_to_verdict(REVERSED, 1000, people)
    assert np.mean((first <= 400) & (found == "worse")) >= 0.95


def test_a_55_45_split_configured_as_50_50_is_flagged_within_4000_units() -> None:
    rng = np.random.default_rng(23)
    candidate = rng.binomial(EVERY, 0.45, (EXPERIMENTS, 400)).cumsum(axis=1)  # a read after every 10 units
    control = np.arange(EVERY, 4001, EVERY) - candidate
    flagged = mismatched(sample_ratio_p(control, candidate, 0.5))
    first = np.where(flagged.any(axis=1), EVERY * (flagged.argmax(axis=1) + 1), np.inf)
    print(f"55/45 flagged: median {np.median(first)} units, 95th percentile {np.percentile(first, 95)}")
    assert np.mean(np.isfinite(first)) >= 0.95
