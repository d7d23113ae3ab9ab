"""The relevance forest: the estimator that model.pkl holds (no Flask).

A RandomForestRegressor learns the chance that a person rates a movie 4 or 5
from demographic features (app.features), over a pool of the most positively
rated movies. Since the whole request space is small (ages 1-120 x M/F/O x 21
occupations), fitting also ranks the pool for every person once, so serving a
recommendation is a table lookup. It also counts, for every person and pool
movie, how people like them rated it: the reasons given with a recommendation
(each person counted once, however much their rows weigh in the forest). With warm_start, it also fits the
warm forest (app.model.warm) that re-ranks the pool for a person who has scored some titles, and keeps every
person's pool relevance for it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from app.model.data import GENDERS, OCCUPATIONS, RELEVANT_RATING, Dataset
from app.model.features import MODEL_GENDERS, DemographicStats, People, rating_matrices
from app.model.reasons import ReasonTable
from app.model.warm import WarmForest, out_of_bag_relevance
from app.model.warm_reasons import CoLikes

MIN_AGE, MAX_AGE = 1, 120
MAX_RECS = 100
# Rows in one prediction batch while ranking the request space: bounds memory.
RANKING_BATCH_ROWS = 250_000


class RelevanceForest(RegressorMixin, BaseEstimator):
    """Scores (age, gender, occupation, movie_id) rows: the chance the person rates the movie 4 or 5."""

    def __init__(
        self,
        *,
        pool_size: int = 300,
        n_folds: int = 5,
        n_estimators: int = 100,
        min_samples_leaf: int = 200,
        max_features: float = 0.33,
        max_samples: float = 0.5,
        random_state: int = 0,
        warm_start: bool = True,
        n_jobs: int | None = -1,
        progress: bool = False,
    ) -> None:
        self.pool_size = pool_size
        self.n_folds = n_folds
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.progress = progress

    def fit(self, dataset: Dataset, people: Dataset | None = None) -> RelevanceForest:
        """Learn from every (user, pool movie) pair of the dataset, then rank the request space. Reasons count the
        users of people (default: the dataset's), for a dataset that repeats some people to weigh them more."""
        self.movie_ids_ = dataset.movies.index.to_numpy()
        self.titles_ = dataset.movies["title"].to_numpy(dtype=object)
        self.pool_ = self._pick_pool(dataset)
        features, target, row_users = self._training_rows(dataset)
        # A row that every tree drew (likely only in a forest of a few trees, as tests train) has no out-of-bag
        # relevance: scikit-learn warns and leaves it 0, which weighs nothing in the warm forest's features.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Some inputs do not have OOB scores", UserWarning)
            self.forest_ = self._fitted_forest(features, target)
        # Threads add up the trees' predictions in varying order, which changes the last bits
        # of a score and can flip near-ties: predict in one thread, so a seed gives one model.
        self.forest_.set_params(n_jobs=1)
        self.stats_ = DemographicStats(dataset.users, dataset.ratings, dataset.movies)
        self.rankings_ = self._rank_request_space()
        self.reasons_ = ReasonTable(dataset if people is None else people, self.pool_)
        if self.warm_start:
            cold_relevance = out_of_bag_relevance(self.forest_, row_users, len(self.pool_))
            del self.forest_.oob_prediction_  # as large as the training rows, and of no use once read
            self.warm_ = WarmForest(n_folds=self.n_folds, random_state=self.random_state, n_jobs=self.n_jobs)
            self.warm_.fit(dataset, self.pool_, cold_relevance)
            self.co_likes_ = CoLikes(dataset if people is None else people, self.pool_)
        return self

    def _fitted_forest(self, features: np.ndarray, target: np.ndarray) -> RandomForestRegressor:
        return RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_samples=self.max_samples,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            oob_score=self.warm_start,  # the warm forest learns from out-of-bag relevance; the trees are the same
        ).fit(features, target)

    def _pick_pool(self, dataset: Dataset) -> np.ndarray:
        """Catalogue positions of the movies rated 4 or 5 by the most users."""
        positives = dataset.ratings.loc[dataset.ratings["rating"] >= RELEVANT_RATING, "movie_id"].value_counts()
        counts = positives.reindex(dataset.movies.index, fill_value=0).to_numpy()
        return np.argsort(-counts, kind="stable")[: self.pool_size]

    def _training_rows(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features computed out of fold: a user's rows use statistics of the other folds only. Also, for each
        block of pool_size rows, the position of its user in the dataset."""
        user_ids = dataset.users.index.to_numpy()
        folds = np.random.RandomState(self.random_state).permutation(len(user_ids)) % self.n_folds
        feature_blocks, target_blocks = [], []
        for fold in tqdm(range(self.n_folds), desc="out-of-fold features", disable=not self.progress):
            inside = pd.Index(user_ids[folds == fold])
            outside = dataset.restricted_to(pd.Index(user_ids[folds != fold]))
            stats = DemographicStats(outside.users, outside.ratings, outside.movies)
            people, movies = _pairs(People.from_users(dataset.users.loc[inside]), self.pool_)
            feature_blocks.append(stats.features(people, movies))
            fold = dataset.restricted_to(inside)
            _, positive = rating_matrices(fold.users.index, fold.movies.index, fold.ratings)
            target_blocks.append(positive[:, self.pool_].ravel())
        row_users = np.concatenate([np.flatnonzero(folds == fold) for fold in range(self.n_folds)])
        return np.concatenate(feature_blocks), np.concatenate(target_blocks), row_users

    def _rank_request_space(self) -> np.ndarray:
        """Top MAX_RECS catalogue positions for every (age, gender, occupation), as int16."""
        ages = np.arange(MIN_AGE, MAX_AGE + 1)
        grid = np.array(np.meshgrid(ages, range(len(MODEL_GENDERS)), range(len(OCCUPATIONS)), indexing="ij"))
        everyone = People(*(axis.ravel() for axis in grid))
        scores = self.pool_scores(everyone).reshape(len(ages), len(MODEL_GENDERS), len(OCCUPATIONS), -1)
        # Gender O: ml-100k has only M and F users, so O gets the mean of both.
        scores = np.concatenate([scores, scores.mean(axis=1, keepdims=True)], axis=1)
        if self.warm_start:  # what the warm forest starts from, for every person (ages x genders x occupations x pool)
            self.pool_relevance_ = scores.astype(np.float16)
        top = np.argsort(-scores, axis=-1, kind="stable")[..., :MAX_RECS]
        return self.pool_[top].astype(np.int16)

    def pool_scores(self, people: People) -> np.ndarray:
        """Predicted relevance of every pool movie for each person (people x pool)."""
        per_batch = max(1, RANKING_BATCH_ROWS // len(self.pool_))
        blocks = []
        for start in tqdm(range(0, len(people.ages), per_batch), desc="ranking", disable=not self.progress):
            batch = People(*(values[start : start + per_batch] for values in vars(people).values()))
            rows, movies = _pairs(batch, self.pool_)
            blocks.append(self.forest_.predict(self.stats_.features(rows, movies)))
        return np.concatenate(blocks).reshape(len(people.ages), len(self.pool_))

    def top_movies(self, people: People, k: int) -> np.ndarray:
        """Catalogue positions of each person's k best movies (people x k), from the ranking table."""
        check_is_fitted(self, "rankings_")
        return self.rankings_[people.ages - MIN_AGE, people.genders, people.occupations, :k]

    def warm_relevance(self, people: People, positions: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Relevance of every pool movie (people x pool) for people who gave scores[i, j] (0: none) to catalogue
        position positions[j]. people.genders index GENDERS: 2 is O."""
        cold = self.pool_relevance_[people.ages - MIN_AGE, people.genders, people.occupations].astype(np.float32)
        return self.warm_.relevance(positions, scores, cold)

    def ranking(self, age: int, gender: str, occupation: str) -> np.ndarray:
        """Catalogue positions of the best movies for one person, best first."""
        check_is_fitted(self, "rankings_")
        return self.rankings_[age - MIN_AGE, GENDERS.index(gender), OCCUPATIONS.index(occupation)]

    def predict(self, X: list | np.ndarray) -> np.ndarray:
        """Relevance for rows [age, gender, occupation, movie_id]; gender O is the mean of M and F."""
        check_is_fitted(self, "forest_")
        rows = pd.DataFrame(list(X), columns=["age", "gender", "occupation", "movie_id"])
        movies = pd.Index(self.movie_ids_).get_indexer(rows["movie_id"])
        if (movies < 0).any():
            raise ValueError("unknown movie_id in X")
        predictions = np.zeros(len(rows))
        # Gender O is replaced by M, then by F; rows of M or F are unchanged by that,
        # so halving the sum gives their own prediction and O the mean of both.
        for gender in MODEL_GENDERS:
            as_gender = rows.assign(gender=rows["gender"].replace("O", gender))
            predictions += self.forest_.predict(self.stats_.features(People.from_users(as_gender), movies))
        return predictions / len(MODEL_GENDERS)

    def score(self, X: list | np.ndarray, y: list | np.ndarray, sample_weight: np.ndarray | None = None) -> float:
        """R^2 of the predicted relevance."""
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))


def _pairs(people: People, pool: np.ndarray) -> tuple[People, np.ndarray]:
    """Every (person, pool movie) pair, person-major."""
    repeat = len(pool)
    rows = People(*(np.repeat(values, repeat) for values in vars(people).values()))
    return rows, np.tile(pool, len(people.ages))
