"""GET /openapi.json: the OpenAPI 3 document, built from the schema classes."""

from __future__ import annotations

from functools import cache

from flask import Blueprint
from pydantic.json_schema import models_json_schema

from app.schemas import (
    HealthResponse,
    LoginRequest,
    Message,
    RecommendRequest,
    RecommendResponse,
    ScoreRequest,
    Strict,
    TokenResponse,
)

bp = Blueprint("openapi", __name__)

MODELS = (Message, LoginRequest, TokenResponse, RecommendRequest, RecommendResponse, ScoreRequest, HealthResponse)
ERRORS = {
    400: "invalid body: the message names the field",
    401: "missing, expired or invalid token",
    413: "body too large",
    415: "the body is not sent as application/json",
    503: "the database is unavailable",
}


BODY_ERRORS = (400, 413, 415)


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def ref(model: type[Strict]) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def operation(summary: str, ok: dict, errors: tuple[int, ...] = (), body: type[Strict] | None = None) -> dict:
    responses = {"200": {"description": "OK", "content": json_content(ok)}}
    responses |= {str(code): {"description": ERRORS[code], "content": json_content(ref(Message))} for code in errors}
    document = {"summary": summary, "responses": responses}
    if body is not None:
        document["requestBody"] = {"required": True, "content": json_content(ref(body))}
    if 401 in errors:
        document["security"] = [{"bearer": []}]
    return document


def health_operation() -> dict:
    document = operation("Model and database status", ref(HealthResponse))
    document["responses"]["503"] = {
        "description": "the model or the database is not working",
        "content": json_content(ref(HealthResponse)),
    }
    return document


def metrics_operation() -> dict:
    return {
        "summary": "Prometheus metrics of all workers",
        "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }


@cache
def build_document() -> dict:
    models = [(model, "validation") for model in MODELS]
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    paths = {
        "/": {"get": operation("Welcome", ref(Message))},
        "/protected": {"get": operation("Check a token", ref(Message), (401,))},
        "/api/login": {
            "post": operation(
                "Trade the session password for a token", ref(TokenResponse), (*BODY_ERRORS, 401), LoginRequest
            )
        },
        "/api/recommend": {
            "post": operation(
                "Recommend movies to a new user", ref(RecommendResponse), (*BODY_ERRORS, 401, 503), RecommendRequest
            )
        },
        "/api/recommend/score": {
            "post": operation(
                "Score a recommended movie", {"type": "string", "enum": ["Ok"]}, (*BODY_ERRORS, 401, 503), ScoreRequest
            )
        },
        "/health": {"get": health_operation()},
        "/openapi.json": {"get": operation("This document", {"type": "object"})},
        "/metrics": {"get": metrics_operation()},
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
