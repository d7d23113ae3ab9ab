from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app import create_app
from app.config import Settings
from app.model.data import GENRES, load_dataset
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME, Recommender
from app.store.recommendation_log import RecommendationLog, make_engine, sqlite_url
from app.training.evaluate import evaluate_online
from app.training.feedback import FEEDBACK_USER_OFFSET, describe_source, rows_for_the_forest, with_feedback
from app.training.metrics import split_users
from app.training.train import TEST_USER_SHARE, train
from tests.model.test_reasons import expected_reason

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def feedback_rows(*rows: tuple) -> pd.DataFrame:
    columns = ["recommendation_id", "movie", "score", "scored_at", "age", "gender", "occupation"]
    return pd.DataFrame([(*row[:3], NOW, *row[3:]) for row in rows], columns=columns)


def test_each_scored_request_becomes_a_user_with_its_demographics(synthetic_data_dir: Path) -> None:
    dataset = load_dataset(synthetic_data_dir)
    feedback = feedback_rows(
        ("a", "Movie 2 (1990)", 5.0, 30, "F", "writer"),
        ("a", "Movie 3 (1990)", 1.0, 30, "F", "writer"),
        ("b", "Not In The Catalogue (2001)", 5.0, 40, "M", "doctor"),
    )
    grown = with_feedback(dataset, feedback)
    added = grown.users.loc[grown.users.index >= FEEDBACK_USER_OFFSET]
    assert added.to_dict("records") == [{"age": 30, "gender": "F", "occupation": "writer"}]
    ratings = grown.ratings[grown.ratings["user_id"] >= FEEDBACK_USER_OFFSET]
    assert sorted(ratings["rating"]) == [1.0, 5.0]
    assert len(grown.ratings) == len(dataset.ratings) + 2


def test_gender_o_is_one_person_but_teaches_the_forest_both_m_and_f_and_weight_repeats(
    synthetic_data_dir: Path,
) -> None:
    dataset = load_dataset(synthetic_data_dir)
    feedback = feedback_rows(
        ("c", "Movie 2 (1990)", 4.0, 50, "O", "retired"), ("d", "Movie 3 (1990)", 2.0, 20, "F", "artist")
    )
    people = with_feedback(dataset, feedback)
    added = people.users.loc[people.users.index >= FEEDBACK_USER_OFFSET]
    assert sorted(added["gender"]) == ["F", "O"]
    rows = rows_for_the_forest(people, weight=3)
    copies = rows.users.loc[rows.users.index >= FEEDBACK_USER_OFFSET]
    assert sorted(copies["gender"]) == ["F"] * 3 + ["F", "F", "F", "M", "M", "M"]
    copied = rows.ratings[rows.ratings["user_id"] >= FEEDBACK_USER_OFFSET]
    assert sorted(copied["rating"]) == [2.0] * 3 + [4.0] * 6
    assert set(copied["user_id"]) == set(copies.index)
    ml100k = rows.ratings[rows.ratings["user_id"] < FEEDBACK_USER_OFFSET]
    pd.testing.assert_frame_equal(ml100k, dataset.ratings, check_dtype=False)


def test_the_source_is_recorded_without_its_password() -> None:
    assert describe_source("postgresql+psycopg://app:s3cret@db/recommender") == (
        "postgresql+psycopg://app:***@db/recommender"
    )


def test_reasons_of_a_model_retrained_with_weighted_scores_count_each_person_once(
    synthetic_data_dir: Path, synthetic_model_dir: Path, tmp_path: Path
) -> None:
    """A simulated population scores what the model shows them; retrained with each score weighing 3, the model's
    reasons must count the people, recounted here with pandas: a gender-O person once, and only among "men and
    women"."""
    database = sqlite_url(tmp_path / "feedback.sqlite3")
    log = RecommendationLog(make_engine(database))
    log.create_tables()
    before = Recommender.load(synthetic_model_dir / MODEL_FILE_NAME)
    rng = np.random.RandomState(0)
    scored = []  # (age, gender, occupation, title, score): one person per recommendation
    for gender, people in (("F", 25), ("O", 25), ("M", 8)):
        for _ in range(people):
            person = (int(rng.randint(25, 35)), gender, "writer")
            titles = before.recommend(*person)
            recommendation = log.record_recommendation(
                age=person[0], gender=gender, occupation="writer", max_recs=10, titles=titles,
                model_version=before.version, explain=False,
            )  # fmt: skip
            for title in titles[: rng.randint(5, 11)]:
                score = int(rng.randint(1, 6))
                log.record_score(recommendation_id=recommendation, movie=title, score=score)
                scored.append((*person, title, score))
    log.engine.dispose()

    train(synthetic_data_dir, tmp_path / "retrained", 1, feedback_db=database, feedback_weight=3)
    after = Recommender.load(tmp_path / "retrained" / MODEL_FILE_NAME)

    dataset = load_dataset(synthetic_data_dir)
    training_users, _ = split_users(dataset.users.index, seed=1, held_out_share=TEST_USER_SHARE)
    titles = dataset.movies["title"]
    ml100k = dataset.ratings[dataset.ratings["user_id"].isin(training_users)].join(dataset.users, on="user_id")
    ratings = pd.concat([
        ml100k.assign(title=ml100k["movie_id"].map(titles))[["age", "gender", "occupation", "title", "rating"]],
        pd.DataFrame(scored, columns=["age", "gender", "occupation", "title", "rating"]),
    ])  # fmt: skip
    flags = dataset.movies.set_index("title")[list(GENRES)]
    genres = {title: [name for name in GENRES if row[name]] for title, row in flags.iterrows()}
    segments = set()
    for person in ((30, "F", "writer"), (30, "O", "writer"), (30, "M", "writer"), (60, "M", "retired")):
        for title, reason in zip(after.recommend(*person, 20), after.reasons(*person, 20), strict=True):
            assert reason == expected_reason(ratings, genres, *person, title), (person, title)
            segments.add(reason["segment"])
    # The feedback reaches the most specific segments, where copies would have counted most.
    assert {"women aged 25-34 (occupation: writer)", "men and women aged 25-34 (occupation: writer)"} <= segments


def genre_share(recommender: Recommender, genre: str, titles: pd.DataFrame) -> float:
    lists = [recommender.recommend(age, "F", "writer", 20) for age in range(25, 35)]
    return float(np.mean([titles.loc[title, genre] for one_list in lists for title in one_list]))


@pytest.mark.dataset
@pytest.mark.slow
def test_scores_from_one_segment_move_that_segment_and_barely_the_others(
    real_data_dir: Path, real_model_dir: Path, tmp_path: Path
) -> None:
    """Women of 25-34 who are writers love comedies (5) and nothing else (1); retraining must notice."""
    taste = "Comedy"
    titles = load_dataset(real_data_dir).movies.set_index("title")
    database = sqlite_url(tmp_path / "feedback.sqlite3")
    before = Recommender.load(real_model_dir / MODEL_FILE_NAME)
    settings = Settings(
        model_path=real_model_dir / MODEL_FILE_NAME,
        session_password="p",
        jwt_secret_key="k" * 40,
        database_url=database,
    )
    client = create_app(settings).test_client()
    token = client.post("/api/login", json={"session_password": "p"}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(0)
    for _ in range(60):
        asked = {"age": rng.randint(25, 34), "gender": "F", "occupation": "writer", "max_recs": 20}
        answer = client.post("/api/recommend", json=asked, headers=headers).get_json()
        for title in answer["recommendations"]:
            score = 5 if titles.loc[title, taste] else 1
            given = {"id": answer["id"], "movie": title, "score": score}
            assert client.post("/api/recommend/score", json=given, headers=headers).status_code == 200

    train(real_data_dir, tmp_path / "retrained", 1, feedback_db=database)
    after = Recommender.load(tmp_path / "retrained" / MODEL_FILE_NAME)

    # The rise depends on which users training holds out, not on warm start (which leaves the cold trees as they
    # were). Measured with the current code at seed 1: with 10% of the users held out, 0.155 before and 0.300 after
    # (+0.145); with 20% (issue 26), 0.20 and 0.25 (+0.05): that split's model already shows more comedies to this
    # segment (4 of the 22 titles it shows, against 5 of 23), and ends lower. A model that ignored the scores rises
    # by 0; the bound is below the smaller of the two rises measured.
    assert genre_share(after, taste, titles) >= genre_share(before, taste, titles) + 0.04
    for age, gender, occupation in ((45, "M", "engineer"), (60, "F", "retired"), (20, "M", "student")):
        unchanged = set(before.recommend(age, gender, occupation)) & set(after.recommend(age, gender, occupation))
        assert len(unchanged) >= 7, (age, gender, occupation)
    metadata = json.loads((tmp_path / "retrained" / METADATA_FILE_NAME).read_text())
    assert metadata["feedback"] == {"database": database, "scores": 1200, "weight": 1}


def test_the_online_view_counts_scores_per_model_version_and_by_reasons_shown(tmp_path: Path) -> None:
    database = sqlite_url(tmp_path / "log.sqlite3")
    log = RecommendationLog(make_engine(database))
    log.create_tables()
    titles = ["Heat (1995)", "Fargo (1996)"]
    for version, given in (("a" * 64, [(5, True), (4, False), (2, True)]), ("b" * 64, [(1, False)])):
        for score, explain in given:
            recommendation = log.record_recommendation(
                age=30, gender="F", occupation="writer", max_recs=2, titles=titles, model_version=version,
                explain=explain,
            )  # fmt: skip
            log.record_score(recommendation_id=recommendation, movie=titles[0], score=score)
    log.record_recommendation(
        age=70, gender="M", occupation="retired", max_recs=2, titles=titles, model_version="b" * 64, explain=True
    )
    log.engine.dispose()

    table = evaluate_online(database, tmp_path / "reports")
    versions = json.loads((tmp_path / "reports" / "online.json").read_text())
    assert versions["a" * 64] == {
        "recommendations_served": 3, "recommendations_scored": 3, "scores": 3,
        "mean_score": pytest.approx(11 / 3), "share_4_or_5": pytest.approx(2 / 3), "segments": {},
        "reasons": {
            "shown": {"recommendations_served": 2, "recommendations_scored": 2, "scores": 2, "mean_score": 3.5,
                      "share_4_or_5": 0.5},
            "not shown": {"recommendations_served": 1, "recommendations_scored": 1, "scores": 1, "mean_score": 4.0,
                          "share_4_or_5": 1.0},
        },
    }  # fmt: skip
    assert versions["b" * 64]["recommendations_served"] == 2
    assert versions["b" * 64]["share_4_or_5"] == 0.0
    assert versions["b" * 64]["reasons"]["shown"] == {
        "recommendations_served": 1, "recommendations_scored": 0, "scores": 0, "mean_score": None,
        "share_4_or_5": None,
    }  # fmt: skip
    assert "| aaaaaaaaaaaa | 3 | 3 | 3 | 3.67 | 0.667 |" in table
    assert "| aaaaaaaaaaaa | shown | 2 | 2 | 2 | 3.50 | 0.500 |" in table
    assert "| aaaaaaaaaaaa | not shown | 1 | 1 | 1 | 4.00 | 1.000 |" in table
    assert "| bbbbbbbbbbbb | shown | 1 | 0 | 0 | - | - |" in table
    assert (tmp_path / "reports" / "online.png").read_bytes().startswith(b"\x89PNG")
