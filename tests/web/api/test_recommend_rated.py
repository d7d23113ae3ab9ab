"""/api/recommend with rated: the scores a person has given so far (SPEC 2, warm start)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.store.recommendation_log import recommendations
from app.web.schemas import MAX_RATED
from tests.conftest import ACCENTED_TITLE
from tests.web.api.test_recommend import VALID, recommend, stored

RATED = [{"movie": "Movie 2 (1990)", "score": 5}, {"movie": ACCENTED_TITLE, "score": 1.5}]


def test_no_rated_title_is_recommended_again(client: FlaskClient, auth_headers: dict) -> None:
    cold = recommend(client, auth_headers, max_recs=100)["recommendations"]
    rated = [{"movie": title, "score": 4} for title in cold[:3]]
    warm = recommend(client, auth_headers, max_recs=100, rated=rated)["recommendations"]
    assert warm and not set(warm) & set(cold[:3])
    assert len(set(warm)) == len(warm)


def test_rated_is_recorded_with_the_recommendation(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    with_scores = recommend(client, auth_headers, rated=RATED)["id"]
    without = recommend(client, auth_headers)["id"]
    recorded = {row["id"]: row["rated"] for row in stored(app, recommendations)}
    assert recorded == {with_scores: RATED, without: None}


def test_the_answer_with_rated_is_the_python_apis(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    answer = recommend(client, auth_headers, rated=RATED, explain=True, max_recs=5)
    model = app.extensions["arms"].control
    scores = {entry["movie"]: entry["score"] for entry in RATED}
    assert answer["recommendations"] == model.recommend(30, "F", "writer", 5, rated=scores)
    assert answer["reasons"] == model.reasons(30, "F", "writer", 5, rated=scores)


def test_an_empty_rated_is_the_cold_answer(client: FlaskClient, auth_headers: dict) -> None:
    assert (
        recommend(client, auth_headers, rated=[])["recommendations"]
        == recommend(client, auth_headers)["recommendations"]
    )


@pytest.mark.parametrize(
    ("rated", "message"),
    [
        ([{"movie": "Heat (1995)", "score": 4}], "rated.0.movie: 'Heat (1995)' is not in the catalogue"),
        ([RATED[0], {"movie": "movie 2 (1990)", "score": 4}], "rated.1.movie: 'movie 2 (1990)' is not"),
        ([RATED[0], {"movie": "Movie 2 (1990)", "score": 3}], "rated: 'Movie 2 (1990)' is given twice"),
        ([{"movie": "Movie 3 (1990)", "score": 0}], "rated.0.score:"),
        ([{"movie": "Movie 3 (1990)", "score": 5.5}], "rated.0.score:"),
        ([{"movie": "Movie 3 (1990)", "score": "4"}], "rated.0.score:"),
        ([{"movie": "Movie 3 (1990)", "score": True}], "rated.0.score:"),
        ([{"movie": "Movie 3 (1990)"}], "rated.0.score: required"),
        ([{"movie": "Movie 3 (1990)", "score": 4, "when": 1}], "rated.0.when: unknown field"),
        ([["Movie 3 (1990)", 4]], "rated.0:"),
        ({"Movie 3 (1990)": 4}, "rated:"),
        (None, "rated:"),
        ([{"movie": f"Movie {n % 29 + 1} (1990)", "score": 4} for n in range(MAX_RATED + 1)], "rated:"),
    ],
)
def test_bad_rated_is_400_naming_it_and_nothing_is_recorded(
    app: Flask, client: FlaskClient, auth_headers: dict, rated: object, message: str
) -> None:
    response = client.post("/api/recommend", json={**VALID, "rated": rated}, headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(message)
    assert stored(app, recommendations) == []
