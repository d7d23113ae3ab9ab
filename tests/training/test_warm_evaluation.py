"""The warm-start evaluation (SPEC 4.4): what is revealed, what each method ranks, and the table's figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.model.data import load_dataset
from app.model.features import People
from app.model.forest import RelevanceForest
from app.model.session import reveal, score_matrix
from app.training.baselines import MostPositive
from app.training.evaluate import evaluate, split_datasets
from app.training.metrics import split_users
from app.training.train import TEST_DATA_FILE_NAME, TEST_USER_SHARE
from app.training.warm_evaluation import COLD, SESSION_BASELINE, WARM, SessionBaseline, cold_top, warm_top
from app.training.warm_report import PLOT_FILE_NAME


@pytest.fixture(scope="module")
def split(synthetic_data_dir: Path) -> tuple:
    training, held_out = split_datasets(load_dataset(synthetic_data_dir), seed=3)
    return training, held_out, RelevanceForest(random_state=3).fit(training)


def test_first_by_time_reveals_each_users_k_earliest_ratings(synthetic_data_dir: Path) -> None:
    ratings = load_dataset(synthetic_data_dir).ratings
    users, movies = pd.Index(sorted(ratings["user_id"].unique())), pd.Index(sorted(ratings["movie_id"].unique()))
    scores, times = score_matrix(ratings, users, movies)
    revealed = reveal(scores, times, np.full(len(users), 3), np.zeros(len(users), bool), np.random.RandomState(0))
    for row, user in enumerate(users):
        earliest = ratings[ratings["user_id"] == user].sort_values("timestamp").head(3)
        expected = dict(zip(earliest["movie_id"], earliest["rating"].astype(float), strict=True))
        assert {movies[col]: revealed[row, col] for col in np.flatnonzero(revealed[row])} == expected


def test_at_random_reveals_k_of_the_users_own_ratings_with_their_scores(synthetic_data_dir: Path) -> None:
    ratings = load_dataset(synthetic_data_dir).ratings
    users, movies = pd.Index(sorted(ratings["user_id"].unique())), pd.Index(sorted(ratings["movie_id"].unique()))
    scores, times = score_matrix(ratings, users, movies)
    sizes = np.arange(len(users)) % 10 + 1
    revealed = reveal(scores, times, sizes, np.ones(len(users), bool), np.random.RandomState(0))
    assert ((revealed > 0).sum(axis=1) == sizes).all()
    assert (revealed[revealed > 0] == scores[revealed > 0]).all()
    again = reveal(scores, times, sizes, np.ones(len(users), bool), np.random.RandomState(1))
    assert (again != revealed).any()


def test_the_cold_list_is_the_models_with_the_revealed_titles_taken_out(split: tuple) -> None:
    _, held_out, model = split
    people = People.from_users(held_out.users)
    revealed = np.zeros((len(people.ages), len(model.titles_)), dtype=np.float32)
    full = model.top_movies(people, model.rankings_.shape[-1])
    revealed[np.arange(len(full)), full[:, 0]] = 5.0
    revealed[np.arange(len(full)), full[:, 2]] = 1.0
    top = cold_top(model, people, revealed)
    for row, ranking in enumerate(full.tolist()):
        assert top[row].tolist() == [movie for movie in ranking if revealed[row, movie] == 0][:10]


def test_no_method_ranks_a_revealed_title(split: tuple) -> None:
    training, held_out, model = split
    people = People.from_users(held_out.users)
    scores, times = score_matrix(held_out.ratings, held_out.users.index, held_out.movies.index)
    revealed = reveal(scores, times, np.full(len(scores), 5), np.ones(len(scores), bool), np.random.RandomState(0))
    for top in (warm_top(model, people, revealed), cold_top(model, people, revealed),
                SessionBaseline(training).top(revealed)):  # fmt: skip
        assert not np.take_along_axis(revealed, top, axis=1).any()


def test_without_a_liked_title_the_session_baseline_is_most_rated_4_plus(split: tuple) -> None:
    training = split[0]
    revealed = np.zeros((1, len(training.movies)), dtype=np.float32)
    revealed[0, [1, 4]] = [2.0, 3.0]
    popular = MostPositive().fit(training).top_movies(People.from_users(training.users.iloc[:1]), 12)[0]
    assert SessionBaseline(training).top(revealed)[0].tolist() == [m for m in popular if m not in (1, 4)][:10]


def test_the_warm_table_reports_each_seeds_paired_ratios(synthetic_data_dir: Path, tmp_path: Path) -> None:
    report = evaluate(synthetic_data_dir, [1, 2], tmp_path)
    warm = report["warm_start"]
    for way, ks in warm["summary"].items():
        for k, row in ks.items():
            cells = [seed[way][k] for seed in warm["per_seed"]]
            assert row[WARM] == pytest.approx(np.mean([cell[WARM] for cell in cells]))
            assert row["ratio_to_cold"]["per_seed"] == pytest.approx([cell[WARM] / cell[COLD] for cell in cells])
            ratio = row["ratio_to_session_baseline"]
            assert ratio["per_seed"] == pytest.approx([cell[WARM] / cell[SESSION_BASELINE] for cell in cells])
            low, high = ratio["interval_95"]
            assert low <= ratio["mean"] <= high
    table = (tmp_path / "evaluation.md").read_text()
    assert "Revealed at random:" in table and "Revealed first by time:" in table
    assert table.count("\n| 10 | ") == 2
    assert (tmp_path / PLOT_FILE_NAME).read_bytes().startswith(b"\x89PNG")


def test_the_test_data_carries_five_of_each_held_out_users_own_scores_and_the_rest_they_liked(
    synthetic_data_dir: Path, synthetic_model_dir: Path
) -> None:
    """Recounted from the raw files: a title listed under two ids is one movie, the later rating wins."""
    warm = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())["warm"]
    items = pd.read_csv(synthetic_data_dir / "u.item", sep="|", header=None, encoding="latin-1")
    ratings = pd.read_csv(synthetic_data_dir / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    ratings = ratings.assign(title=ratings["item"].map(items.set_index(0)[1])).sort_values("timestamp")
    ratings = ratings.drop_duplicates(["user", "title"], keep="last")
    users = pd.read_csv(synthetic_data_dir / "u.user", sep="|", header=None)[0]
    _, held_out = split_users(pd.Index(users), seed=1, held_out_share=TEST_USER_SHARE)
    assert warm["revealed"] == 5 and len(warm["users"]) == len(held_out)
    for user, entry in zip(held_out, warm["users"], strict=True):
        own = ratings[ratings["user"] == user].set_index("title")["rating"]
        rated = {given["movie"]: given["score"] for given in entry["rated"]}
        assert len(rated) == 5 and all(own[title] == score for title, score in rated.items())
        assert entry["liked"] == sorted(set(own[own >= 4].index) - set(rated))
