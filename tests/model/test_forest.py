from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.metrics import r2_score

from app.model.data import GENDERS, OCCUPATIONS, load_dataset
from app.model.features import MODEL_GENDERS, People
from app.model.forest import MAX_AGE, MIN_AGE, RelevanceForest
from app.model.recommender import MODEL_FILE_NAME


@pytest.fixture(scope="module")
def model(synthetic_model_dir: Path) -> RelevanceForest:
    return joblib.load(synthetic_model_dir / MODEL_FILE_NAME)


def test_the_ranking_table_covers_every_age_gender_and_occupation(model: RelevanceForest) -> None:
    ages, genders, occupations, depth = model.rankings_.shape
    assert (ages, genders, occupations) == (MAX_AGE - MIN_AGE + 1, len(GENDERS), len(OCCUPATIONS))
    assert depth == len(model.pool_)
    assert model.rankings_.dtype == np.int16


def test_every_ranking_holds_each_movie_once(model: RelevanceForest) -> None:
    table = model.rankings_.reshape(-1, model.rankings_.shape[-1])
    assert all(len(set(row)) == len(row) for row in table)


def test_gender_o_ranks_by_the_mean_of_the_m_and_f_scores(model: RelevanceForest) -> None:
    age, occupation = 33, OCCUPATIONS.index("writer")
    scores = [
        model.pool_scores(People(np.array([age]), np.array([gender]), np.array([occupation])))[0]
        for gender in range(len(MODEL_GENDERS))
    ]
    mean = (scores[0] + scores[1]) / 2
    expected = model.pool_[np.argsort(-mean, kind="stable")]
    np.testing.assert_array_equal(model.ranking(age, "O", "writer"), expected[: model.rankings_.shape[-1]])


def test_predict_for_gender_o_is_the_mean_of_m_and_f(model: RelevanceForest) -> None:
    movie_id = int(model.movie_ids_[model.pool_[0]])
    male, female, other = model.predict([[40, gender, "doctor", movie_id] for gender in ("M", "F", "O")])
    assert other == pytest.approx((male + female) / 2)


def test_predict_refuses_an_unknown_movie(model: RelevanceForest) -> None:
    with pytest.raises(ValueError, match="unknown movie_id"):
        model.predict([[40, "M", "doctor", 999_999]])


def test_score_is_the_r2_of_the_predictions(model: RelevanceForest) -> None:
    rows = [[age, "F", "artist", int(movie_id)] for age in (20, 50) for movie_id in model.movie_ids_[:10]]
    target = [float(i % 3 == 0) for i in range(len(rows))]
    assert model.score(rows, target) == pytest.approx(r2_score(target, model.predict(rows)))


def test_fitting_twice_with_one_seed_gives_the_same_model(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    first = RelevanceForest(random_state=3).fit(dataset)
    second = RelevanceForest(random_state=3).fit(dataset)
    np.testing.assert_array_equal(first.rankings_, second.rankings_)
    rows = [[25, "M", "student", int(movie_id)] for movie_id in first.movie_ids_]
    np.testing.assert_array_equal(first.predict(rows), second.predict(rows))


def test_the_model_finds_the_taste_hidden_in_the_synthetic_ratings(model: RelevanceForest) -> None:
    # Synthetic men like even-numbered movies, women the odd ones.
    for gender, liked_parity in (("F", 1), ("M", 0)):
        top = model.movie_ids_[model.ranking(30, gender, "engineer")[:5]]
        assert sum(int(movie_id) % 2 == liked_parity for movie_id in top) >= 4, (gender, top)
