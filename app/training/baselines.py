"""The rankings the model must beat (spec 4.3), each fitted on training users only (no Flask)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.model.data import Dataset
from app.model.features import People, rating_matrices, segment_totals
from app.training.metrics import ndcg_at_k, split_users

# The hierarchy of the segment baseline, from the whole population down to the person's own segment.
SEGMENT_HIERARCHY = (("gender",), ("gender", "age_bucket"), ("gender", "age_bucket", "occupation"))
SMOOTHING_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
MEAN_RATING_PRIOR = 10.0


class Baseline:
    """A ranking from ratings alone; subclasses say how a movie's score for a person is computed."""

    name = ""

    def fit(self, dataset: Dataset) -> Baseline:
        self.rated_, self.positive_ = rating_matrices(dataset.users.index, dataset.movies.index, dataset.ratings)
        self.people_ = People.from_users(dataset.users)
        return self

    def scores(self, people: People) -> np.ndarray:
        """Score of every catalogue movie for each person (people x catalogue); higher ranks first."""
        raise NotImplementedError

    def top_movies(self, people: People, k: int) -> np.ndarray:
        return np.argsort(-self.scores(people), axis=1, kind="stable")[:, :k]

    def relevance(self, people: People) -> np.ndarray | None:
        """The chance of a 4 or 5 where the baseline gives one, for R^2 beside the model."""
        return None


class MostRated(Baseline):
    name = "most rated"

    def scores(self, people: People) -> np.ndarray:
        return np.broadcast_to(self.rated_.sum(axis=0), (len(people.ages), self.rated_.shape[1]))


class MostPositive(Baseline):
    name = "most rated 4+"

    def scores(self, people: People) -> np.ndarray:
        share = self.positive_.mean(axis=0)
        return np.broadcast_to(share, (len(people.ages), len(share)))

    relevance = scores


class SegmentPopularity(Baseline):
    """Share rated 4+ in the person's segment, smoothed level by level toward the whole population.

    The smoothing strength is chosen on a validation split of the training users.
    """

    name = "segment rated 4+"

    def __init__(self, *, random_state: int = 0, strength: float | None = None) -> None:
        self.random_state = random_state
        self.strength = strength

    def fit(self, dataset: Dataset) -> SegmentPopularity:
        if self.strength is None:
            self.strength_ = self._tune(dataset)
        else:
            self.strength_ = self.strength
        return super().fit(dataset)

    def _tune(self, dataset: Dataset) -> float:
        fitting, validation = split_users(dataset.users.index, seed=self.random_state)
        people = People.from_users(dataset.users.loc[validation])
        _, relevant = rating_matrices(validation, dataset.movies.index, dataset.ratings)
        quality = {}
        for strength in SMOOTHING_GRID:
            candidate = SegmentPopularity(strength=strength).fit(dataset.restricted_to(fitting))
            quality[strength] = ndcg_at_k(candidate.top_movies(people, 10), relevant, 10).mean()
        return max(quality, key=quality.get)

    def scores(self, people: People) -> np.ndarray:
        rates = np.broadcast_to(self.positive_.mean(axis=0), (len(people.ages), self.positive_.shape[1]))
        for segmentation in SEGMENT_HIERARCHY:
            positives, sizes = segment_totals(self.people_, segmentation, self.positive_)
            asked = people.segment_codes(segmentation)
            rates = (positives[asked] + self.strength_ * rates) / (sizes[asked] + self.strength_)
        return rates

    relevance = scores


class ItemMeanRating(Baseline):
    """Each movie's mean rating, shrunk toward the global mean; the baseline for rating RMSE."""

    name = "item mean rating"

    def fit(self, dataset: Dataset) -> ItemMeanRating:
        super().fit(dataset)
        positions = dataset.movies.index.get_indexer(dataset.ratings["movie_id"])
        ratings = dataset.ratings["rating"].to_numpy(dtype=float)
        sums = np.bincount(positions, weights=ratings, minlength=len(dataset.movies))
        counts = np.bincount(positions, minlength=len(dataset.movies))
        self.mean_ratings_ = (sums + MEAN_RATING_PRIOR * ratings.mean()) / (counts + MEAN_RATING_PRIOR)
        self.movie_index_ = dataset.movies.index
        return self

    def scores(self, people: People) -> np.ndarray:
        return np.broadcast_to(self.mean_ratings_, (len(people.ages), len(self.mean_ratings_)))

    def rmse(self, ratings: pd.DataFrame) -> float:
        predicted = self.mean_ratings_[self.movie_index_.get_indexer(ratings["movie_id"])]
        return float(np.sqrt(np.mean((ratings["rating"].to_numpy() - predicted) ** 2)))


def all_baselines(random_state: int) -> list[Baseline]:
    return [MostRated(), MostPositive(), SegmentPopularity(random_state=random_state), ItemMeanRating()]
