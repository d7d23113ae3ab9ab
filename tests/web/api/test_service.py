from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.store.recommendation_log import RecommendationLog, make_engine
from app.web.api.health import WELCOME
from app.web.api.openapi import build_document

UNREACHABLE_DATABASE = "sqlite:////nonexistent/dir/db.sqlite3"


def test_welcome(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_json() == {"message": WELCOME}


@pytest.mark.parametrize(("path", "content_type"), [("/ui/", "text/html"), ("/ui/app.js", "text/javascript")])
def test_the_page_and_its_files_are_served(client: FlaskClient, path: str, content_type: str) -> None:
    with client.get(path) as answer:  # a file answer holds the file open until closed
        assert answer.status_code == 200
        assert answer.content_type.startswith(content_type)


def test_health_reports_the_model_version_and_database(app: Flask, client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "model": "ok",
        "model_version": app.extensions["arms"].control.version,
        "database": "ok",
    }


def test_health_is_503_when_the_database_does_not_answer(app: Flask, client: FlaskClient) -> None:
    app.extensions["recommendation_log"] = RecommendationLog(make_engine(UNREACHABLE_DATABASE))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unavailable"
    assert response.get_json()["status"] == "unavailable"


def test_recommend_is_503_with_json_when_the_database_does_not_answer(
    app: Flask, client: FlaskClient, auth_headers: dict
) -> None:
    app.extensions["recommendation_log"] = RecommendationLog(make_engine(UNREACHABLE_DATABASE))
    response = client.post(
        "/api/recommend", json={"age": 30, "gender": "M", "occupation": "writer"}, headers=auth_headers
    )
    assert response.status_code == 503
    assert response.get_json() == {"message": "the database is unavailable; try again shortly"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/nowhere", 404),
        ("get", "/api/recommend", 405),
        ("delete", "/", 405),
        ("put", "/api/login", 405),
        ("get", "/api/login/", 404),
    ],
)
def test_unknown_routes_and_methods_answer_json(client: FlaskClient, method: str, path: str, status: int) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response.is_json
    assert set(response.get_json()) == {"message"}


def test_an_unexpected_error_is_a_generic_500_logged_at_error(
    app: Flask, client: FlaskClient, auth_headers: dict, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> list[str]:
        raise RuntimeError("secret internals")

    app.extensions["arms"].control.recommend = broken
    response = client.post(
        "/api/recommend", json={"age": 30, "gender": "M", "occupation": "writer"}, headers=auth_headers
    )
    assert response.status_code == 500
    assert response.get_json() == {"message": "internal server error"}
    assert any(record.levelname == "ERROR" and record.exc_info for record in caplog.records)


def test_every_response_carries_a_request_id(client: FlaskClient) -> None:
    assert len(client.get("/").headers["X-Request-ID"]) == 16


def test_openapi_documents_every_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document == build_document()
    assert document["openapi"].startswith("3.")
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if not rule.endpoint.endswith("static")  # the page's files
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == routes


def test_openapi_bodies_are_the_validation_schemas(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    recommend = document["components"]["schemas"]["RecommendRequest"]
    assert recommend["required"] == ["age", "gender", "occupation"]
    assert recommend["additionalProperties"] is False
    assert recommend["properties"]["age"] == {"maximum": 120, "minimum": 1, "title": "Age", "type": "integer"}


def test_metrics_count_requests_recommendations_scores_and_the_model(
    app: Flask, client: FlaskClient, auth_headers: dict
) -> None:
    answer = client.post(
        "/api/recommend", json={"age": 30, "gender": "M", "occupation": "writer"}, headers=auth_headers
    ).get_json()
    client.post(
        "/api/recommend/score",
        json={"id": answer["id"], "movie": answer["recommendations"][0], "score": 3},
        headers=auth_headers,
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'http_requests_total{method="POST",route="/api/recommend",status="200"}' in text
    assert "http_request_duration_seconds_bucket" in text
    assert "recommendations_served_total" in text
    assert "scores_recorded_total" in text
    assert f'model_info{{version="{app.extensions["arms"].control.version}"}} 1.0' in text


def test_with_a_metrics_token_metrics_answer_only_requests_that_carry_it(settings: Settings) -> None:
    client = create_app(Settings(**{**vars(settings), "metrics_token": "scraper-secret"})).test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scraper-secret"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["message"].startswith("/metrics needs the metrics token")
    allowed = client.get("/metrics", headers={"Authorization": "Bearer scraper-secret"})
    assert allowed.status_code == 200
    assert "http_requests_total" in allowed.get_data(as_text=True)
