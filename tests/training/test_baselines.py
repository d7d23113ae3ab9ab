from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model.data import Dataset, load_dataset
from app.model.features import People
from app.training.baselines import SMOOTHING_GRID, ItemMeanRating, MostPositive, MostRated, SegmentPopularity


@pytest.fixture(scope="module")
def dataset(synthetic_data_dir: Path) -> Dataset:
    return load_dataset(synthetic_data_dir)


def someone(gender: int) -> People:
    return People(ages=np.array([30]), genders=np.array([gender]), occupations=np.array([4]))


def test_most_rated_ranks_by_the_number_of_ratings(dataset: Dataset) -> None:
    counts = dataset.ratings["movie_id"].value_counts()
    first = dataset.movies.index[MostRated().fit(dataset).top_movies(someone(0), 1)[0, 0]]
    assert counts[first] == counts.max()


def test_most_positive_ranks_by_the_number_of_4_and_5(dataset: Dataset) -> None:
    counts = dataset.ratings.loc[dataset.ratings["rating"] >= 4, "movie_id"].value_counts()
    first = dataset.movies.index[MostPositive().fit(dataset).top_movies(someone(1), 1)[0, 0]]
    assert counts[first] == counts.max()


def test_segment_popularity_tunes_its_smoothing_and_follows_the_segment(dataset: Dataset) -> None:
    baseline = SegmentPopularity(random_state=0).fit(dataset)
    assert baseline.strength_ in SMOOTHING_GRID
    # Synthetic men like even-numbered movies, women the odd ones.
    for gender, parity in ((0, 0), (1, 1)):
        top = dataset.movies.index[baseline.top_movies(someone(gender), 5)[0]]
        assert sum(movie_id % 2 == parity for movie_id in top) >= 4


def test_segment_popularity_with_huge_smoothing_is_global_popularity(dataset: Dataset) -> None:
    smoothed = SegmentPopularity(strength=1e9).fit(dataset).scores(someone(0))[0]
    np.testing.assert_allclose(smoothed, MostPositive().fit(dataset).scores(someone(0))[0], rtol=1e-6)


def test_item_mean_rmse_is_that_of_its_predictions(dataset: Dataset) -> None:
    baseline = ItemMeanRating().fit(dataset)
    ratings = dataset.ratings.head(50)
    predicted = baseline.mean_ratings_[dataset.movies.index.get_indexer(ratings["movie_id"])]
    assert baseline.rmse(ratings) == pytest.approx(np.sqrt(np.mean((ratings["rating"] - predicted) ** 2)))
