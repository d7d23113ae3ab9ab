from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app, prepare_database
from app.config import MAX_BODY_BYTES, Settings
from app.model.recommender import OCCUPATIONS
from app.store.recommendation_log import recommendations, scores
from tests.conftest import PASSWORD

VALID = {"age": 30, "gender": "F", "occupation": "writer"}


def recommend(client: FlaskClient, headers: dict, **body: object) -> dict:
    response = client.post("/api/recommend", json={**VALID, **body}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def stored(app: Flask, table) -> list:
    with app.extensions["recommendation_log"].engine.connect() as connection:
        return connection.execute(select(table)).mappings().all()


def test_recommend_answers_distinct_titles_and_an_id(client: FlaskClient, auth_headers: dict) -> None:
    answer = recommend(client, auth_headers)
    assert set(answer) == {"recommendations", "id"}
    assert len(answer["recommendations"]) == 10
    assert len(set(answer["recommendations"])) == 10


@pytest.mark.parametrize("gender", ["M", "F", "O"])
@pytest.mark.parametrize("max_recs", [1, 7, 100])
def test_recommend_never_answers_more_than_max_recs(
    client: FlaskClient, auth_headers: dict, gender: str, max_recs: int
) -> None:
    titles = recommend(client, auth_headers, gender=gender, max_recs=max_recs)["recommendations"]
    assert 1 <= len(titles) <= max_recs
    assert len(set(titles)) == len(titles)


def test_recommend_matches_the_python_api(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    titles = recommend(client, auth_headers, age=61, gender="O", occupation="retired", max_recs=5)["recommendations"]
    assert titles == app.extensions["arms"].control.recommend(61, "O", "retired", 5)


def test_every_recommendation_is_recorded(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    answer = recommend(client, auth_headers, age=44, gender="M", occupation="lawyer", max_recs=3)
    (row,) = stored(app, recommendations)
    assert row["id"] == answer["id"]
    assert (row["age"], row["gender"], row["occupation"], row["max_recs"]) == (44, "M", "lawyer", 3)
    assert row["titles"] == answer["recommendations"]
    assert row["model_version"] == app.extensions["arms"].control.version
    assert row["created_at"] is not None


@pytest.mark.parametrize("explain", [None, False])
def test_without_explain_the_answer_is_the_seeds(client: FlaskClient, auth_headers: dict, explain: bool | None) -> None:
    answer = recommend(client, auth_headers) if explain is None else recommend(client, auth_headers, explain=explain)
    assert set(answer) == {"recommendations", "id"}


@pytest.mark.parametrize("gender", ["M", "F", "O"])
def test_explain_answers_a_reason_per_title_in_order(
    app: Flask, client: FlaskClient, auth_headers: dict, gender: str
) -> None:
    answer = recommend(client, auth_headers, gender=gender, max_recs=7, explain=True)
    assert set(answer) == {"recommendations", "id", "reasons"}
    assert answer["recommendations"] == app.extensions["arms"].control.recommend(30, gender, "writer", 7)
    assert answer["reasons"] == app.extensions["arms"].control.reasons(30, gender, "writer", 7)
    assert len(answer["reasons"]) == 7
    for title, reason in zip(answer["recommendations"], answer["reasons"], strict=True):
        assert set(reason) == {"text", "segment", "raters", "positive_share", "genres", "year"}
        assert reason["raters"] >= 1
        assert f"of the {reason['raters']} {reason['segment']} who rated it" in reason["text"]
        assert title.endswith(f"({reason['year']})")


def test_a_client_key_is_recorded_and_changes_nothing_in_the_answer(
    app: Flask, client: FlaskClient, auth_headers: dict
) -> None:
    key = "a person's key: ~ 64 printable ASCII at most"
    keyed = client.post("/api/recommend", json={**VALID, "client": key}, headers=auth_headers).get_json()
    plain = recommend(client, auth_headers)
    assert keyed["recommendations"] == plain["recommendations"]
    assert set(keyed) == set(plain) == {"recommendations", "id"}
    assert {row["id"]: row["client"] for row in stored(app, recommendations)} == {
        keyed["id"]: key,
        plain["id"]: None,
    }


def test_a_recorded_recommendation_keeps_whether_reasons_were_shown(
    app: Flask, client: FlaskClient, auth_headers: dict
) -> None:
    shown = recommend(client, auth_headers, explain=True)["id"]
    not_shown = recommend(client, auth_headers)["id"]
    assert {row["id"]: row["explain"] for row in stored(app, recommendations)} == {shown: True, not_shown: False}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age": 0}, "age"),
        ({"age": 121}, "age"),
        ({"age": -5}, "age"),
        ({"age": True}, "age"),
        ({"age": 30.0}, "age"),
        ({"age": 30.5}, "age"),
        ({"age": "30"}, "age"),
        ({"age": None}, "age"),
        ({"age": 10**40}, "age"),
        ({"gender": "m"}, "gender"),
        ({"gender": "X"}, "gender"),
        ({"gender": ""}, "gender"),
        ({"gender": 1}, "gender"),
        ({"occupation": "Writer"}, "occupation"),
        ({"occupation": "astronaut"}, "occupation"),
        ({"occupation": ["writer"]}, "occupation"),
        ({"max_recs": 0}, "max_recs"),
        ({"max_recs": 101}, "max_recs"),
        ({"max_recs": False}, "max_recs"),
        ({"max_recs": 5.0}, "max_recs"),
        ({"max_recs": "5"}, "max_recs"),
        ({"max_recs": None}, "max_recs"),
        ({"explain": "true"}, "explain"),
        ({"explain": 1}, "explain"),
        ({"explain": None}, "explain"),
        ({"client": ""}, "client"),
        ({"client": "x" * 65}, "client"),
        ({"client": "tab\there"}, "client"),
        ({"client": "café"}, "client"),
        ({"client": 42}, "client"),
        ({"client": None}, "client"),
        ({"favourite": "Heat"}, "favourite"),
    ],
)
def test_recommend_refuses_invalid_fields_with_400_naming_them(
    app: Flask, client: FlaskClient, auth_headers: dict, change: dict, field: str
) -> None:
    response = client.post("/api/recommend", json={**VALID, **change}, headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json()["message"].startswith(f"{field}:")
    assert stored(app, recommendations) == []


@pytest.mark.parametrize("missing", ["age", "gender", "occupation"])
def test_recommend_requires_age_gender_and_occupation(client: FlaskClient, auth_headers: dict, missing: str) -> None:
    body = {key: value for key, value in VALID.items() if key != missing}
    response = client.post("/api/recommend", json=body, headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json() == {"message": f"{missing}: required"}


@pytest.mark.parametrize("occupation", OCCUPATIONS)
def test_every_occupation_is_accepted(client: FlaskClient, auth_headers: dict, occupation: str) -> None:
    recommend(client, auth_headers, occupation=occupation)


def score(client: FlaskClient, headers: dict, body: dict) -> tuple[int, object]:
    response = client.post("/api/recommend/score", json=body, headers=headers)
    return response.status_code, response.get_json()


def test_a_score_is_recorded_after_ok(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    answer = recommend(client, auth_headers)
    movie = answer["recommendations"][2]
    assert score(client, auth_headers, {"id": answer["id"], "movie": movie, "score": 4.5}) == (200, "Ok")
    (row,) = stored(app, scores)
    assert (row["recommendation_id"], row["movie"], row["score"]) == (answer["id"], movie, 4.5)


def test_a_score_for_a_recommendation_still_in_the_journal_is_503_with_retry_after_then_taken(
    settings: Settings, tmp_path: Path
) -> None:
    """As in a stack: recommendations go to a journal, which a mule copies into the database."""
    app = create_app(replace(settings, journal_dir=tmp_path / "journal"))
    prepare_database(app)  # what deploy/preflight.py does before a stack serves
    client = app.test_client()
    token = client.post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    answer = recommend(client, headers)
    given = {"id": answer["id"], "movie": answer["recommendations"][0], "score": 4}
    pending = client.post("/api/recommend/score", json=given, headers=headers)
    assert (pending.status_code, pending.headers["Retry-After"]) == (503, "1")
    assert pending.get_json()["message"].endswith("is not recorded yet; try again shortly")
    app.extensions["recommendation_log"].drain_journal()  # the mule's turn
    assert score(client, headers, given) == (200, "Ok")
    assert [row["recommendation_id"] for row in stored(app, scores)] == [answer["id"]]


def test_scoring_again_keeps_the_latest_score(app: Flask, client: FlaskClient, auth_headers: dict) -> None:
    answer = recommend(client, auth_headers)
    movie = answer["recommendations"][0]
    for value in (2, 5, 3):
        assert score(client, auth_headers, {"id": answer["id"], "movie": movie, "score": value}) == (200, "Ok")
    assert [row["score"] for row in stored(app, scores)] == [3.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": 0.99}, "score:"),
        ({"score": 5.01}, "score:"),
        ({"score": True}, "score:"),
        ({"score": "4"}, "score:"),
        ({"score": None}, "score:"),
        ({"id": "0" * 32}, "id: no recommendation has this id"),
        ({"id": 7}, "id:"),
        ({"movie": "Not Recommended (1999)"}, "movie: not one of the titles recommended with this id"),
        ({"movie": None}, "movie:"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_an_invalid_score_is_400_and_not_recorded(
    app: Flask, client: FlaskClient, auth_headers: dict, change: dict, message: str
) -> None:
    answer = recommend(client, auth_headers)
    body = {"id": answer["id"], "movie": answer["recommendations"][0], "score": 4, **change}
    status, reply = score(client, auth_headers, body)
    assert status == 400
    assert reply["message"].startswith(message)
    assert stored(app, scores) == []


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_score_that_is_not_finite_is_400(client: FlaskClient, auth_headers: dict, constant: str) -> None:
    answer = recommend(client, auth_headers)
    raw = f'{{"id": "{answer["id"]}", "movie": "x", "score": {constant}}}'
    response = client.post("/api/recommend/score", data=raw, content_type="application/json", headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("score:")


@pytest.mark.parametrize("path", ["/api/login", "/api/recommend", "/api/recommend/score"])
@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        ("{not json", "application/json", 400, "the body is not valid JSON"),
        ("", "application/json", 400, "the body is not valid JSON"),
        ("[1, 2]", "application/json", 400, "the body must be a JSON object"),
        ('"text"', "application/json", 400, "the body must be a JSON object"),
        ("null", "application/json", 400, "the body must be a JSON object"),
        ("\xff\xfe", "application/json", 400, "the body is not valid JSON"),
        ('{"age": 30}', "text/plain", 415, "send the body as JSON with Content-Type: application/json"),
        ('{"age": 30}', None, 415, "send the body as JSON with Content-Type: application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_json(
    client: FlaskClient,
    auth_headers: dict,
    path: str,
    data: str,
    content_type: str | None,
    status: int,
    message: str,
) -> None:
    response = client.post(path, data=data, content_type=content_type, headers=auth_headers)
    assert response.status_code == status
    assert response.get_json() == {"message": message}


@pytest.mark.parametrize("path", ["/api/login", "/api/recommend", "/api/recommend/score"])
def test_a_body_over_the_limit_is_413_with_json(client: FlaskClient, auth_headers: dict, path: str) -> None:
    body = '{"pad": "' + "x" * MAX_BODY_BYTES + '"}'
    response = client.post(path, data=body, content_type="application/json", headers=auth_headers)
    assert response.status_code == 413
    assert set(response.get_json()) == {"message"}
