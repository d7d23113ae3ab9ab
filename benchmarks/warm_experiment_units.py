"""The units the live warm-start experiment needs (tests/experiment/test_live_warm_start.py), simulated offline.

python -m benchmarks.warm_experiment_units [--model-dir model] [--runs 400]

Each held-out person of the model (the live test's population; `python -m app.train` makes the same model as
the test, seed 1) visits once in process with each of the two models, warm start and its cold twin: three asks
of 10 titles, the shown titles they rated scored with their own rating and sent as rated with the next ask. A
person's answers are the same at every visit, so an experiment is visits drawn at random from these people, each
put in an arm at random, read after every READ_EVERY units as `status` reads them (app/experiment/analysis.py).
Prints each ask's liked titles per arm, and the quantiles of the units that the verdict `better` took.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np

from app.config import ml100k_dir
from app.experiment.analysis import Arm, compare, narrowed
from app.model.data import RELEVANT_RATING, ensure_dataset
from app.model.recommender import MODEL_FILE_NAME, Recommender
from tests.experiment.candidates import without_warm_start
from tests.experiment.test_live import Population
from tests.experiment.test_live_warm_start import ASKS, TITLES

READ_EVERY = 25
MOST_UNITS = 8_000


def visits(recommender: Recommender, population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Each person's liked titles at each ask (people x asks), and whether they scored anything."""
    liked, scored = [], []
    for user, person in population.people.iterrows():
        own = population.ratings.get(user, {})
        rated: dict[str, int] = {}
        per_ask = []
        for _ in range(ASKS):
            shown = recommender.recommend(int(person["age"]), person["gender"], person["occupation"], TITLES,
                                          rated=rated)  # fmt: skip
            per_ask.append(sum(own[title] >= RELEVANT_RATING for title in shown if title in own))
            rated |= {title: int(own[title]) for title in shown if title in own}
        liked.append(per_ask)
        scored.append(bool(rated))
    return np.array(liked), np.array(scored)


def units_to_better(rng: np.random.Generator, arms: list[tuple[np.ndarray, np.ndarray]]) -> int | None:
    """The units one simulated experiment took to the verdict `better` (None: `worse`, or none by MOST_UNITS).
    arms: (liked per person, scored per person) of the control, then of the candidate."""
    people = rng.integers(0, len(arms[0][0]), MOST_UNITS)
    to_candidate = rng.random(MOST_UNITS) < 0.5
    lower = upper = np.nan
    for units in range(READ_EVERY, MOST_UNITS + 1, READ_EVERY):
        sums = []
        for (liked, scored), member in zip(arms, (~to_candidate[:units], to_candidate[:units]), strict=True):
            chosen = people[:units][member]
            sums.append(Arm.from_units(liked=liked[chosen], recommendations=np.full(chosen.size, ASKS),
                                       shown=0, scored=scored[chosen], scores=0, score_sum=0))  # fmt: skip
        lower, upper = narrowed(lower, upper, compare(*sums))
        if lower > 0:
            return units
        if upper < 0:
            return None
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm_experiment_units", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("model"))
    parser.add_argument("--runs", type=int, default=400)
    args = parser.parse_args(argv)
    population = Population(ensure_dataset(ml100k_dir()))
    warm = Recommender.load(args.model_dir / MODEL_FILE_NAME)
    estimator = copy.copy(warm.estimator)
    without_warm_start(estimator)
    cold = Recommender(estimator, "cold twin")
    arms = [visits(cold, population), visits(warm, population)]
    for name, (liked, _) in zip(("cold twin", "warm start"), arms, strict=True):
        print(f"{name}: liked titles at each ask {np.round(liked.mean(axis=0), 3).tolist()}")
    arms = [(liked.sum(axis=1), scored) for liked, scored in arms]
    rng = np.random.default_rng(0)
    taken = [units_to_better(rng, arms) for _ in range(args.runs)]
    found = np.array([units for units in taken if units is not None])
    quantiles = np.percentile(found, [50, 95, 99]) if found.size else []
    print(f"{len(population.people)} people, {args.runs} experiments: `better` in {found.size}; units taken, "
          f"median, 95th and 99th percentiles: {np.round(quantiles).astype(int).tolist()}")  # fmt: skip


if __name__ == "__main__":
    main()
