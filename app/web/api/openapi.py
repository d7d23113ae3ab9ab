"""GET /openapi.json: the OpenAPI 3 document, built from the schema classes."""

from __future__ import annotations

from functools import cache

from flask import Blueprint
from pydantic.json_schema import models_json_schema

from app.web.schemas import (
    ExplainedRecommendResponse,
    HealthResponse,
    LoginRequest,
    Message,
    Reason,
    RecommendRequest,
    RecommendResponse,
    ScoreRequest,
    Strict,
    TokenResponse,
)

bp = Blueprint("openapi", __name__)

MODELS = (
    Message,
    LoginRequest,
    TokenResponse,
    RecommendRequest,
    RecommendResponse,
    Reason,
    ExplainedRecommendResponse,
    ScoreRequest,
    HealthResponse,
)
ERRORS = {
    400: "invalid body: the message names the field",
    401: "missing, expired or invalid token (at /api/login: the wrong password)",
    413: "body too large",
    415: "the body is not sent as application/json",
    429: "too many failed login attempts from this address: wait Retry-After seconds",
    503: "a store the service needs is unavailable (the database; at /api/login, the login limit's)",
}


BODY_ERRORS = (400, 413, 415)


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def ref(model: type[Strict]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation(
    name: str, summary: str, ok: dict, errors: tuple[int, ...] = (), body: type[Strict] | None = None
) -> dict:
    responses = {"200": {"description": "OK", "content": json_content(ok)}}
    responses |= {str(code): {"description": ERRORS[code], "content": json_content(ref(Message))} for code in errors}
    document = {"operationId": name, "summary": summary, "responses": responses}
    if body is not None:
        document["requestBody"] = {"required": True, "content": json_content(ref(body))}
    if 401 in errors:
        document["security"] = [{"bearer": []}]
    return document


def health_operation() -> dict:
    document = operation("health", "Model and database status", ref(HealthResponse))
    document["responses"]["503"] = {
        "description": "the model or the database is not working",
        "content": json_content(ref(HealthResponse)),
    }
    return document


def recommend_operation() -> dict:
    document = operation(
        "recommend",
        "Recommend movies to a new user, with a reason for each when explain is true",
        {"oneOf": [ref(RecommendResponse), ref(ExplainedRecommendResponse)]},
        (*BODY_ERRORS, 401, 503),
        RecommendRequest,
    )
    # How a client goes on: score one of the titles with the returned id.
    document["responses"]["200"]["links"] = {
        "ScoreFirstTitle": {
            "operationId": "score",
            "requestBody": {"id": "$response.body#/id", "movie": "$response.body#/recommendations/0", "score": 4},
        }
    }
    return document


def score_operation() -> dict:
    document = operation(
        "score", "Score a recommended movie", {"type": "string", "enum": ["Ok"]}, (*BODY_ERRORS, 401, 503), ScoreRequest
    )
    document["responses"]["503"] |= {
        "description": (
            "the database is unavailable, or the recommendation is not recorded yet (a replica copies it from its "
            "journal): send the score again after Retry-After seconds. A score for an id the service issued is "
            "never answered 4xx; 400 is for an id it never issued, or a movie not among that id's titles"
        ),
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    }
    return document


def page_operation() -> dict:
    return {
        "operationId": "page",
        "summary": "The web page: sign in, ask for recommendations, score them",
        "responses": {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}},
    }


def metrics_operation() -> dict:
    return {
        "operationId": "metrics",
        "summary": "Prometheus metrics of all workers",
        "responses": {
            "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": {
                "description": "METRICS_TOKEN is set and the request does not carry it as 'Bearer <token>'",
                "content": json_content(ref(Message)),
            },
        },
    }


@cache
def build_document() -> dict:
    models = [(model, "validation") for model in MODELS]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths = {
        "/": {"get": operation("welcome", "Welcome", ref(Message))},
        "/protected": {"get": operation("protected", "Check a token", ref(Message), (401,))},
        "/api/login": {
            "post": operation(
                "login",
                "Trade the session password for a token",
                ref(TokenResponse),
                (*BODY_ERRORS, 401, 429, 503),
                LoginRequest,
            )
        },
        "/api/recommend": {"post": recommend_operation()},
        "/api/recommend/score": {"post": score_operation()},
        "/health": {"get": health_operation()},
        "/openapi.json": {"get": operation("openapi", "This document", {"type": "object"})},
        "/metrics": {"get": metrics_operation()},
        "/ui/": {"get": page_operation()},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Movie recommendations for new users", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


@bp.get("/openapi.json")
def openapi() -> dict:
    return build_document()
