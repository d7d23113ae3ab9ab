from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model.data import load_dataset
from app.model.features import SEGMENT_PRIOR, DemographicStats, People, age_buckets, feature_names


@pytest.fixture(scope="module")
def stats(synthetic_data_dir: Path) -> DemographicStats:
    dataset = load_dataset(synthetic_data_dir)
    return DemographicStats(dataset.users, dataset.ratings, dataset.movies)


def person(age: int, gender: int, occupation: int, movies: int = 1) -> People:
    return People(ages=np.full(movies, age), genders=np.full(movies, gender), occupations=np.full(movies, occupation))


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(1, 0), (17, 0), (18, 1), (24, 1), (25, 2), (34, 2), (35, 3), (45, 4), (50, 5), (56, 6), (120, 6)],
)
def test_age_buckets_follow_the_movielens_1m_boundaries(age: int, bucket: int) -> None:
    assert age_buckets(np.array([age]))[0] == bucket


def test_features_have_one_named_column_each_and_are_finite(stats: DemographicStats) -> None:
    rows = stats.features(person(30, 1, 4, movies=5), np.arange(5))
    assert rows.shape == (5, len(feature_names()))
    assert np.isfinite(rows).all()


def test_features_do_not_depend_on_the_order_of_rows(stats: DemographicStats) -> None:
    people = People(ages=np.array([20, 60, 20]), genders=np.array([0, 1, 0]), occupations=np.array([3, 7, 3]))
    movies = np.array([2, 4, 6])
    forward = stats.features(people, movies)
    order = np.array([2, 0, 1])
    backward = stats.features(People(*(values[order] for values in vars(people).values())), movies[order])
    np.testing.assert_array_equal(forward[order], backward)


def test_a_segment_without_users_gets_the_rate_of_everyone(stats: DemographicStats) -> None:
    # No synthetic user is 120 years old, so the 56+ x occupation 0 segment may be empty; check the formula.
    columns = feature_names()
    column = columns.index("positive_rate|genderxage_bucketxoccupation")
    everyone = columns.index("positive_share")
    codes = stats.people.segment_codes(("gender", "age_bucket", "occupation"))
    asked = person(120, 0, 0)
    assert asked.segment_codes(("gender", "age_bucket", "occupation"))[0] not in codes
    row = stats.features(asked, np.array([3]))[0]
    assert row[column] == pytest.approx(row[everyone])


def test_segment_rate_counts_the_segment_users_who_rated_4_or_5(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    stats = DemographicStats(dataset.users, dataset.ratings, dataset.movies)
    women = dataset.users.index[dataset.users["gender"] == "F"]
    movie_id = dataset.movies.index[3]
    ratings = dataset.ratings
    liked = ((ratings["movie_id"] == movie_id) & ratings["user_id"].isin(women) & (ratings["rating"] >= 4)).sum()
    everyone = ((ratings["movie_id"] == movie_id) & (ratings["rating"] >= 4)).sum() / len(dataset.users)
    expected = (liked + SEGMENT_PRIOR * everyone) / (len(women) + SEGMENT_PRIOR)
    row = stats.features(person(30, 1, 0), np.array([3]))[0]
    assert row[feature_names().index("positive_rate|gender")] == pytest.approx(expected)


def test_neighbour_weights_favour_the_same_gender_occupation_and_age(stats: DemographicStats) -> None:
    weights = stats.neighbour_weights(person(52, 1, 5))[0]
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-5)
    known = stats.people
    alike = (known.genders == 1) & (known.occupations == 5) & (known.ages == 52)
    assert alike.any()
    assert weights[alike].min() >= weights.max() - 1e-9
