"""Access tokens (flask-jwt-extended): every token failure is a 401 with a JSON message."""

from __future__ import annotations

import hmac
from datetime import timedelta

from flask import Flask, Response
from flask_jwt_extended import JWTManager, create_access_token

from app.config import Settings
from app.errors import error_response

jwt = JWTManager()
TOKEN_SUBJECT = "session"


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.token_seconds),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
    )
    jwt.init_app(app)


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing says nothing about the password."""
    return hmac.compare_digest(given.encode(), expected.encode())


def issue_token() -> str:
    return create_access_token(identity=TOKEN_SUBJECT)


def unauthorized(message: str) -> tuple[Response, int]:
    return error_response(message, 401)


@jwt.unauthorized_loader
def missing_token(reason: str) -> tuple[Response, int]:
    return unauthorized("missing or malformed Authorization header: send 'Bearer <access_token>'")


@jwt.invalid_token_loader
def invalid_token(reason: str) -> tuple[Response, int]:
    return unauthorized("invalid token")


@jwt.expired_token_loader
def expired_token(_header: dict, _payload: dict) -> tuple[Response, int]:
    return unauthorized("the token has expired: log in again")


@jwt.revoked_token_loader
@jwt.needs_fresh_token_loader
@jwt.user_lookup_error_loader
@jwt.token_verification_failed_loader
def refused_token(_header: dict, _payload: dict) -> tuple[Response, int]:
    return unauthorized("invalid token")
