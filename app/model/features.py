"""The model's features for (person, movie) pairs, shared by training and serving (no Flask).

A person is known by age, gender (M or F; O is served as the mean of both) and
occupation. Besides those and the movie's own attributes, the features say how
much people like them liked the movie: its positive rate inside each of the
person's demographic segments, and among demographic neighbours. Those rates
come from a set of users' ratings; training computes them out of fold, so that
a row's own user never feeds its features.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.model.data import GENRES, OCCUPATIONS, RELEVANT_RATING

MODEL_GENDERS = ("M", "F")
AGE_BUCKET_STARTS = (18, 25, 35, 45, 50, 56)  # buckets: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
AGE_BUCKETS = len(AGE_BUCKET_STARTS) + 1
AGE_BUCKET_NAMES = (
    f"under {AGE_BUCKET_STARTS[0]}",
    *(f"{start}-{end - 1}" for start, end in itertools.pairwise(AGE_BUCKET_STARTS)),
    f"{AGE_BUCKET_STARTS[-1]} or over",
)
SEGMENTATIONS = (
    ("gender",),
    ("age_bucket",),
    ("occupation",),
    ("gender", "age_bucket"),
    ("gender", "occupation"),
    ("gender", "age_bucket", "occupation"),
)
SEGMENT_SIZES = {"gender": len(MODEL_GENDERS), "age_bucket": AGE_BUCKETS, "occupation": len(OCCUPATIONS)}
# Pseudo-counts that pull small segments toward the whole population's rate.
SEGMENT_PRIOR = 10.0
RATER_PRIOR = 10.0
# Demographic neighbours: weight exp(-|age gap| / AGE_SCALE), times these when gender or occupation differ.
NEIGHBOUR_AGE_SCALE = 10.0
NEIGHBOUR_OTHER_GENDER = 0.3
NEIGHBOUR_OTHER_OCCUPATION = 0.3


@dataclass(frozen=True)
class People:
    """Demographics of several people, as parallel integer arrays."""

    ages: np.ndarray
    genders: np.ndarray  # index into MODEL_GENDERS
    occupations: np.ndarray  # index into OCCUPATIONS

    @classmethod
    def from_users(cls, users: pd.DataFrame) -> People:
        return cls(
            ages=users["age"].to_numpy(dtype=np.int64),
            genders=users["gender"].map(MODEL_GENDERS.index).to_numpy(dtype=np.int64),
            occupations=users["occupation"].map(OCCUPATIONS.index).to_numpy(dtype=np.int64),
        )

    def segment_codes(self, segmentation: tuple[str, ...]) -> np.ndarray:
        """Each person's segment in a segmentation, as one mixed-radix integer."""
        values = {"gender": self.genders, "age_bucket": age_buckets(self.ages), "occupation": self.occupations}
        codes = np.zeros(len(self.ages), dtype=np.int64)
        for attribute in segmentation:
            codes = codes * SEGMENT_SIZES[attribute] + values[attribute]
        return codes


def age_buckets(ages: np.ndarray) -> np.ndarray:
    return np.searchsorted(AGE_BUCKET_STARTS, ages, side="right")


def segment_count(segmentation: tuple[str, ...]) -> int:
    return int(np.prod([SEGMENT_SIZES[attribute] for attribute in segmentation]))


def rating_matrices(user_ids: pd.Index, movie_ids: pd.Index, ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Users x movies: 1 where the user rated the movie, and 1 where they rated it 4 or 5."""
    rows = user_ids.get_indexer(ratings["user_id"])
    cols = movie_ids.get_indexer(ratings["movie_id"])
    rated = np.zeros((len(user_ids), len(movie_ids)), dtype=np.float32)
    positive = np.zeros_like(rated)
    rated[rows, cols] = 1.0
    positive[rows, cols] = (ratings["rating"].to_numpy() >= RELEVANT_RATING).astype(np.float32)
    return rated, positive


def segment_totals(people: People, segmentation: tuple[str, ...], outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment: the outcome summed over its people (segments x movies), and its size (segments x 1)."""
    codes = people.segment_codes(segmentation)
    members = np.zeros((segment_count(segmentation), len(codes)), dtype=np.float32)
    members[codes, np.arange(len(codes))] = 1.0
    return members @ outcome, members.sum(axis=1, keepdims=True)


OUTCOMES = ("rated", "positive")  # a user rated the movie; a user rated it 4 or 5


def feature_names() -> list[str]:
    return [
        "age", "female", *(f"occupation={name}" for name in OCCUPATIONS),
        *(f"genre={name}" for name in GENRES), "year",
        "rated_share", "positive_share", "positive_rate_among_raters", "mean_rating",
        *(f"{outcome}_rate|{'x'.join(segmentation)}" for outcome in OUTCOMES for segmentation in SEGMENTATIONS),
        *(f"{outcome}_rate|neighbours" for outcome in OUTCOMES),
    ]  # fmt: skip


class DemographicStats:
    """How a set of users rated the catalogue, summarised for feature building."""

    def __init__(self, users: pd.DataFrame, ratings: pd.DataFrame, movies: pd.DataFrame) -> None:
        rated, positive = rating_matrices(users.index, movies.index, ratings)
        movie_positions = movies.index.get_indexer(ratings["movie_id"])
        rating_sums = np.bincount(movie_positions, weights=ratings["rating"].to_numpy(), minlength=len(movies))
        raters, positives = rated.sum(axis=0), positive.sum(axis=0)
        global_positive_rate = positives.sum() / max(raters.sum(), 1.0)
        global_mean_rating = rating_sums.sum() / max(raters.sum(), 1.0)

        self.people = People.from_users(users)
        self.outcomes = (rated, positive)
        self.movie_table = np.column_stack(
            [
                movies[list(GENRES)].to_numpy(dtype=np.float32),
                movies["year"].to_numpy(dtype=np.float32),
                raters / len(users),
                positives / len(users),
                (positives + RATER_PRIOR * global_positive_rate) / (raters + RATER_PRIOR),
                (rating_sums + RATER_PRIOR * global_mean_rating) / (raters + RATER_PRIOR),
            ]
        ).astype(np.float32)
        self.segment_rates = [
            self._segment_rates(segmentation, outcome) for outcome in self.outcomes for segmentation in SEGMENTATIONS
        ]

    def _segment_rates(self, segmentation: tuple[str, ...], outcome: np.ndarray) -> np.ndarray:
        """Share of each segment's users with the outcome for each movie, smoothed toward everyone's share."""
        totals, sizes = segment_totals(self.people, segmentation, outcome)
        return (totals + SEGMENT_PRIOR * outcome.mean(axis=0)) / (sizes + SEGMENT_PRIOR)

    def neighbour_weights(self, people: People) -> np.ndarray:
        """How much each known user counts as each person's demographic neighbour (people x users, rows sum to 1)."""
        known_ages = self.people.ages
        ages = np.clip(people.ages, known_ages.min(), known_ages.max())
        weights = np.exp(-np.abs(ages[:, None] - known_ages[None, :]) / NEIGHBOUR_AGE_SCALE)
        weights *= np.where(people.genders[:, None] == self.people.genders[None, :], 1.0, NEIGHBOUR_OTHER_GENDER)
        weights *= np.where(
            people.occupations[:, None] == self.people.occupations[None, :], 1.0, NEIGHBOUR_OTHER_OCCUPATION
        )
        return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)

    def features(self, people: People, movies: np.ndarray) -> np.ndarray:
        """Feature rows for person i and catalogue position movies[i], one row per pair."""
        unique, person_of_row = np.unique(
            np.column_stack([people.ages, people.genders, people.occupations]), axis=0, return_inverse=True
        )
        distinct = People(ages=unique[:, 0], genders=unique[:, 1], occupations=unique[:, 2])
        occupation_onehot = np.eye(len(OCCUPATIONS), dtype=np.float32)[people.occupations]
        segment_columns = [
            rates[distinct.segment_codes(segmentation)[person_of_row], movies]
            for segmentation, rates in zip(SEGMENTATIONS * len(OUTCOMES), self.segment_rates, strict=True)
        ]
        neighbours = self.neighbour_weights(distinct)
        neighbour_columns = [(neighbours @ outcome)[person_of_row, movies] for outcome in self.outcomes]
        return np.column_stack(
            [
                people.ages.astype(np.float32),
                people.genders.astype(np.float32),
                occupation_onehot,
                self.movie_table[movies],
                *segment_columns,
                *neighbour_columns,
            ]
        ).astype(np.float32)
