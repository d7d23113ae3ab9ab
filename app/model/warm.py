"""Warm start: a second random forest re-scores the pool with the scores a person gave in this session (no Flask).

The cold forest knows a person by age, gender and occupation. The warm forest takes its relevance for the
person and movie as one feature among the session's (app.model.session): it learns, from simulated sessions
of the training users, how much the person's own scores should move each movie. A simulated session reveals
1 to MAX_SESSION_SIZE of a user's ratings, at random for half the users and their first by time for the other
half; the target is whether the user rated the movie 4 or 5, over the pool movies not revealed. Its features
are out of fold: a user's session reads neighbours computed from the other folds' users, and the cold
relevance is the forest's out-of-bag prediction for the user's rows, so that the forest does not learn to
trust signals that only look strong because they saw the user's own ratings.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from app.model.data import Dataset
from app.model.features import rating_matrices
from app.model.session import Neighbours, reveal, score_matrix, session_features

MAX_SESSION_SIZE = 10
WARM_FOREST_PARAMS = {"n_estimators": 40, "min_samples_leaf": 100, "max_features": 0.5, "max_samples": 0.3}


class WarmForest:
    """Relevance of every pool movie for a person who has scored some titles: fitted by fit(), read by relevance()."""

    def __init__(self, *, n_folds: int = 5, random_state: int = 0, n_jobs: int | None = -1) -> None:
        self.n_folds = n_folds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, dataset: Dataset, pool: np.ndarray, cold_relevance: np.ndarray) -> WarmForest:
        """Learn from one simulated session per user of the dataset; cold_relevance is users x pool, out of bag."""
        rng = np.random.RandomState(self.random_state)
        users, movies = dataset.users.index, dataset.movies.index
        scores, times = score_matrix(dataset.ratings, users, movies)
        rated, positive = rating_matrices(users, movies, dataset.ratings)
        sizes = np.minimum(rng.randint(1, MAX_SESSION_SIZE + 1, len(users)), (scores > 0).sum(axis=1) - 1)
        revealed = reveal(scores, times, sizes, rng.random_sample(len(users)) < 0.5, rng)
        folds = rng.permutation(len(users)) % self.n_folds
        features, targets = [], []
        for fold in range(self.n_folds):
            inside, outside = folds == fold, folds != fold
            neighbours = Neighbours.from_matrices(rated[outside], positive[outside], pool)
            rows = session_features(revealed[inside], neighbours, cold_relevance[inside])
            kept = (revealed[inside][:, pool] == 0).ravel()  # a revealed title is never ranked
            features.append(rows[kept])
            targets.append(positive[inside][:, pool].ravel()[kept])
        self.forest_ = RandomForestRegressor(
            **WARM_FOREST_PARAMS, random_state=self.random_state, n_jobs=self.n_jobs
        ).fit(np.concatenate(features), np.concatenate(targets))
        self.forest_.set_params(n_jobs=1)  # one thread: the same scores, in the same order, at every call
        self.neighbours_ = Neighbours.from_matrices(rated, positive, pool)
        return self

    def relevance(self, positions: np.ndarray, scores: np.ndarray, cold_relevance: np.ndarray) -> np.ndarray:
        """Relevance of each pool movie (sessions x pool) for sessions that gave scores[s, i] (0: none) to catalogue
        position positions[i]; cold_relevance is sessions x pool."""
        rows = session_features(scores, self.neighbours_.rows(positions), cold_relevance)
        # The forest's predict() in the same order of sums, without its checks and thread pool per call: for one
        # request's 300 rows these took 6.5 ms of CPU, the trees' own work 2 ms (measured under load).
        total = np.zeros(len(rows))
        for tree in self.forest_.estimators_:
            total += tree.tree_.predict(rows).reshape(len(rows))
        return (total / len(self.forest_.estimators_)).reshape(cold_relevance.shape)


def out_of_bag_relevance(forest: RandomForestRegressor, user_order: np.ndarray, pool_size: int) -> np.ndarray:
    """The cold forest's out-of-bag relevance for its training rows (users x pool, person-major), as users x pool
    in the order of user_order (each user's position among the rows)."""
    by_row = forest.oob_prediction_.reshape(-1, pool_size)
    return by_row[np.argsort(user_order, kind="stable")]
