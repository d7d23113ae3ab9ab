"""Reasons (app.reasons) checked against the raw ml-100k files, recounted with pandas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from app.model.data import GENDERS, GENRES, OCCUPATIONS, load_dataset
from app.model.reasons import MIN_RATERS, ReasonTable
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, Recommender
from app.training.metrics import split_users
from app.training.train import TEST_USER_SHARE
from app.web.schemas import Reason

AGE_BUCKETS = ((1, 17, "under 18"), (18, 24, "18-24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 49, "45-49"),
               (50, 55, "50-55"), (56, 200, "56 or over"))  # fmt: skip


@pytest.fixture(scope="module")
def recommender(real_model_dir: Path) -> Recommender:
    return Recommender.load(real_model_dir / MODEL_FILE_NAME)


@pytest.fixture(scope="module")
def training_ratings(real_data_dir: Path, real_model_dir: Path) -> pd.DataFrame:
    """The training users' ratings by title from the raw files: a title listed under two ids is one movie, and
    a user's later rating of it wins."""
    users = pd.read_csv(real_data_dir / "u.user", sep="|", names=["user", "age", "gender", "occupation", "zip"],
                        encoding="latin-1")  # fmt: skip
    items = pd.read_csv(real_data_dir / "u.item", sep="|", header=None, encoding="latin-1")
    ratings = pd.read_csv(real_data_dir / "u.data", sep="\t", names=["user", "item", "rating", "timestamp"])
    seed = json.loads((real_model_dir / METADATA_FILE_NAME).read_text())["seed"]
    training_users, _ = split_users(pd.Index(users["user"]), seed=seed, held_out_share=TEST_USER_SHARE)
    ratings = ratings.assign(title=ratings["item"].map(items.set_index(0)[1]))
    ratings = ratings.sort_values("timestamp", kind="stable").drop_duplicates(["user", "title"], keep="last")
    return ratings[ratings["user"].isin(training_users)].merge(users, on="user")


@pytest.fixture(scope="module")
def genres_by_title(real_data_dir: Path) -> dict[str, list[str]]:
    items = pd.read_csv(real_data_dir / "u.item", sep="|", header=None, encoding="latin-1")
    first = items.drop_duplicates(1)  # a title's genres are those of its lowest id
    return {
        row[1]: [name for name, flag in zip(GENRES, row[5:], strict=True) if flag] for row in first.itertuples(False)
    }


def expected_reason(ratings: pd.DataFrame, genres: dict, age: int, gender: str, occupation: str, title: str) -> dict:
    low, high, bucket = next(bucket for bucket in AGE_BUCKETS if bucket[0] <= age <= bucket[1])
    in_bucket = ratings["age"].between(low, high)
    is_gender = ratings["gender"] == gender
    has_occupation = ratings["occupation"] == occupation
    gender_words = {"M": "men", "F": "women", "O": "men and women"}[gender]
    chain = [
        (is_gender & in_bucket & has_occupation, f"{gender_words} aged {bucket} (occupation: {occupation})"),
        (is_gender & in_bucket, f"{gender_words} aged {bucket}"),
        (is_gender, gender_words),
    ]
    if gender == "O":  # no rater is O: its segments take men and women together
        chain = [(in_bucket & has_occupation, chain[0][1]), (in_bucket, chain[1][1])]
    chain.append((np.ones(len(ratings), dtype=bool), "men and women"))
    of_title = ratings["title"] == title
    for members, segment in chain:
        rated = ratings[members & of_title]["rating"]
        if len(rated) >= MIN_RATERS or segment == "men and women":
            break
    share = float((rated >= 4).mean())
    return {
        "text": f"{share:.0%} of the {len(rated)} {segment} who rated it gave it 4 or 5.",
        "segment": segment,
        "raters": len(rated),
        "positive_share": round(share, 4),
        "genres": genres[title],
        "year": int(re.search(r"\((\d{4})\)$", title).group(1)),
    }


@pytest.mark.dataset
def test_reasons_are_the_training_users_exact_counts(
    recommender: Recommender, training_ratings: pd.DataFrame, genres_by_title: dict
) -> None:
    rng = np.random.RandomState(7)
    people = [(int(rng.randint(1, 121)), str(rng.choice(GENDERS)), str(rng.choice(OCCUPATIONS))) for _ in range(25)]
    people += [(30, "F", "student"), (19, "M", "student"), (70, "O", "retired"), (8, "F", "none")]
    specific = set()
    for person in people:
        titles, reasons = recommender.recommend(*person), recommender.reasons(*person)
        for title, reason in zip(titles, reasons, strict=True):
            assert reason == expected_reason(training_ratings, genres_by_title, *person, title), (person, title)
            specific.add("(occupation:" in reason["segment"])
    assert specific == {True, False}, "the sample should reach segments with an occupation and broader ones"


@pytest.mark.dataset
def test_gender_o_says_it_combines_men_and_women(recommender: Recommender) -> None:
    for occupation in OCCUPATIONS:
        for age in (10, 30, 60):
            for reason in recommender.reasons(age, "O", occupation, 100):
                assert reason["segment"].startswith("men and women")
                assert "men and women" in reason["text"]


@pytest.mark.dataset
def test_every_person_gets_a_reason_per_title_up_to_max_recs(recommender: Recommender) -> None:
    for gender in GENDERS:
        for occupation in OCCUPATIONS:
            reasons = recommender.reasons(33, gender, occupation, 100)
            assert len(reasons) == 100
            assert all(reason["raters"] >= MIN_RATERS for reason in reasons)


@pytest.mark.dataset
def test_every_reason_the_model_holds_is_valid_for_the_api_and_its_json_is_itself(recommender: Recommender) -> None:
    for reason in recommender.estimator.reasons_.reasons:
        assert Reason.model_validate(reason).model_dump() == reason
    for person in ((30, "F", "writer"), (75, "O", "none")):
        assert json.loads(recommender.reasons_json(*person, 100)) == recommender.reasons(*person, 100)


def test_a_pool_movie_no_one_rated_gets_a_reason_that_says_so(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    two_users = dataset.restricted_to(dataset.users.index[:2])
    table = ReasonTable(two_users, np.arange(len(dataset.movies)))
    unrated = [reason for reason in table.reasons if reason["raters"] == 0]
    assert unrated
    for reason in unrated:
        assert reason["text"] == "None of the people the model learnt from rated it."
        assert Reason.model_validate(reason).positive_share == 0


def test_reasons_refuse_what_recommend_refuses(synthetic_model_dir: Path) -> None:
    recommender = Recommender.load(synthetic_model_dir / MODEL_FILE_NAME)
    with pytest.raises(ValueError, match="occupation must be one of"):
        recommender.reasons(30, "F", "astronaut")
    with pytest.raises(ValueError, match="max_recs must be between 1 and 100"):
        recommender.reasons(30, "F", "writer", 0)


def test_a_model_made_before_reasons_is_refused_with_what_to_do(synthetic_model_dir: Path, tmp_path: Path) -> None:
    model = joblib.load(synthetic_model_dir / MODEL_FILE_NAME)
    del model.reasons_
    joblib.dump(model, tmp_path / MODEL_FILE_NAME)
    with pytest.raises(ModelFileError, match="predates reasons; train it again with python -m app.train"):
        Recommender.load(tmp_path / MODEL_FILE_NAME)
