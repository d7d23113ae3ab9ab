"""Simulated units for the analysis: many experiments at once, read after every batch, with numpy.

A recommendation shows 10 titles. Its liked titles (scored 4 or 5) follow a zero-inflated binomial: it is
scored at all with probability `engaged`, and then each title is liked with probability `liking`. With
`with_moments` the two are set from a mean and a standard deviation, as measured offline
(shared/EXPERIMENT-NOTES.md: the served model 4.23, sd 2.56, so 80% of recommendations scored; its ranking
reversed 1.72, sd 1.86). A unit that holds several recommendations (a person) has a liking of its own, drawn
around the population's from a beta distribution: its recommendations are correlated, as a person's are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binom

from app.experiment.analysis import Arm

TITLES = 10
# A person's liking ~ Beta(liking * C, (1 - liking) * C): C = 4 spreads it widely (sd about 0.22 at 0.5).
CONCENTRATION = 4.0


@dataclass(frozen=True)
class Population:
    engaged: float
    liking: float

    @classmethod
    def with_moments(cls, mean: float, sd: float) -> Population:
        # E[x] = a T q and E[x^2] = a (T q (1 - q) + T^2 q^2), so E[x^2] = mean (1 - q) + T q mean.
        liking = (sd**2 + mean**2 - mean) / ((TITLES - 1) * mean)
        return cls(engaged=mean / (TITLES * liking), liking=liking)

    def scoring(self, share: float) -> Population:
        """The same liking of what is scored, with `share` of recommendations scored."""
        return replace(self, engaged=share)

    def liked(self, rng: np.random.Generator, recommendations: np.ndarray, people: bool) -> tuple[np.ndarray, ...]:
        """Liked titles per unit, given each unit's recommendations, and whether it has a score."""
        engaged = rng.binomial(recommendations, self.engaged)
        shape = recommendations.shape
        liking = (
            rng.beta(self.liking * CONCENTRATION, (1 - self.liking) * CONCENTRATION, shape) if people else self.liking
        )
        return rng.binomial(TITLES * engaged, liking), engaged > 0

    def drawn(self, uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each unit of one recommendation is scored, and its liked titles, from one uniform each."""
        engaged = uniform < self.engaged
        thresholds = self.engaged * binom.cdf(np.arange(TITLES), TITLES, self.liking)
        liked = np.zeros(uniform.shape, dtype=np.int16)
        for threshold in thresholds.astype(np.float32):
            liked += uniform > threshold
        return engaged, liked * engaged


@dataclass
class Sums:
    """Running sums for one arm of every experiment."""

    units: np.ndarray
    scored_units: np.ndarray
    liked: np.ndarray
    liked_squares: np.ndarray
    recommendations: np.ndarray
    recommendation_squares: np.ndarray
    liked_times_recommendations: np.ndarray

    def add(self, member: np.ndarray, liked: np.ndarray, scored: np.ndarray, recommendations: np.ndarray) -> None:
        x, y = liked * member, recommendations * member
        self.units += member.sum(axis=1)
        self.scored_units += (scored & member).sum(axis=1)
        self.liked += x.sum(axis=1)
        self.liked_squares += (x * x).sum(axis=1)
        self.recommendations += y.sum(axis=1)
        self.recommendation_squares += (y * y).sum(axis=1)
        self.liked_times_recommendations += (x * y).sum(axis=1)

    def arm(self) -> Arm:
        return secondary_figures_left_out(**{name: value.copy() for name, value in vars(self).items()})


def secondary_figures_left_out(**sums: np.ndarray) -> Arm:
    """An arm of these sums; the secondary figures (titles shown, scores) play no part in the statistics."""
    zeros = np.zeros_like(sums["units"])
    return Arm(**sums, shown=zeros, scored=zeros, scores=zeros, score_sum=zeros)


def looks(
    rng: np.random.Generator,
    control: Population,
    candidate: Population,
    *,
    experiments: int,
    units: int,
    every: int = 50,
    share: float = 0.5,
    people: bool = False,
) -> Iterator[tuple[int, Arm, Arm]]:
    """(units so far, control, candidate) after every `every` units, for `experiments` experiments at once.

    Each unit goes to the candidate with probability `share`. With `people`, a unit holds 1 + Poisson(2)
    recommendations; otherwise it is one recommendation.
    """
    arms = [Sums(*(np.zeros(experiments) for _ in range(7))) for _ in range(2)]
    for done in range(every, units + 1, every):
        shape = (experiments, every)
        recommendations = 1 + rng.poisson(2, shape) if people else np.ones(shape, dtype=int)
        to_candidate = rng.random(shape) < share
        for sums, population, member in ((arms[0], control, ~to_candidate), (arms[1], candidate, to_candidate)):
            sums.add(member, *population.liked(rng, recommendations, people), recommendations)
        yield done, arms[0].arm(), arms[1].arm()


def paths(
    rng: np.random.Generator,
    control: Population,
    candidate: Population,
    *,
    experiments: int,
    units: int,
    share: float,
    every: int = 10,
) -> tuple[Arm, Arm]:
    """Every look of `experiments` experiments of one recommendation per unit, at once: each field of the two
    arms has the shape (experiments, units // every), the sums after every `every` units.

    Faster than looks() by drawing each unit once and adding up with cumulative sums; memory is about 30 bytes
    per unit of every experiment, so callers take experiments a few hundred at a time.
    """
    to_candidate = rng.random((experiments, units), dtype=np.float32) < share
    # One uniform per unit gives both whether it is scored (below `engaged`) and, by inverting the binomial's
    # distribution function within that range, its liked titles: a third of the time numpy's binomial takes.
    uniform = rng.random((experiments, units), dtype=np.float32)
    drawn = {population: population.drawn(uniform) for population in (control, candidate)}
    engaged, liked = drawn[control]
    if candidate != control:
        engaged, liked = (np.where(to_candidate, *pair) for pair in zip(drawn[candidate], drawn[control], strict=True))

    def at_looks(values: np.ndarray) -> np.ndarray:
        per_look = values.reshape(experiments, units // every, every).sum(axis=2, dtype=np.int64)
        return per_look.cumsum(axis=1).astype(float)

    def arm(member: np.ndarray) -> Arm:
        count, scored, x = at_looks(member), at_looks(engaged & member), liked * member
        total, squares = at_looks(x), at_looks(x * x)
        return secondary_figures_left_out(units=count, scored_units=scored, liked=total, liked_squares=squares,
                                          recommendations=count, recommendation_squares=count,
                                          liked_times_recommendations=total)  # fmt: skip

    return arm(~to_candidate), arm(to_candidate)
