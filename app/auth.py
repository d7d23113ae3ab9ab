"""Access tokens: issued with flask-jwt-extended, checked with one direct PyJWT decode.

flask-jwt-extended's own check (jwt_required) decodes a token several times per
request, about 220 us on this machine; one jwt.decode with the same key,
algorithm and claims is a tenth of that, on the route that must be fast.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import jwt as pyjwt
from flask import Flask, current_app, request
from flask_jwt_extended import JWTManager, create_access_token
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from app.config import Settings
from app.errors import APIError

jwt = JWTManager()
# Per client address: behind nginx that is X-Forwarded-For as ProxyFix trusts it (TRUSTED_PROXY_HOPS).
limiter = Limiter(key_func=get_remote_address)
ALGORITHM = "HS256"
TOKEN_SUBJECT = "session"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type"]

Arguments = ParamSpec("Arguments")
Result = TypeVar("Result")


def init_app(app: Flask, settings: Settings) -> None:
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.token_seconds),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM=ALGORITHM,
    )
    jwt.init_app(app)
    app.config.update(
        LOGIN_RATE_LIMIT=settings.login_rate_limit,
        RATELIMIT_STORAGE_URI=settings.rate_limit_storage_uri,
        RATELIMIT_HEADERS_ENABLED=True,
    )
    limiter.init_app(app)


def login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing says nothing about the password."""
    return hmac.compare_digest(given.encode(), expected.encode())


def issue_token() -> str:
    return create_access_token(identity=TOKEN_SUBJECT)


def require_token(view: Callable[Arguments, Result]) -> Callable[Arguments, Result]:
    """Answer 401 unless the request carries 'Authorization: Bearer <a valid access token>'."""

    @functools.wraps(view)
    def checked(*args: Arguments.args, **kwargs: Arguments.kwargs) -> Result:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise APIError("missing or malformed Authorization header: send 'Bearer <access_token>'", 401)
        try:
            claims = pyjwt.decode(
                token.strip(),
                current_app.config["JWT_SECRET_KEY"],
                algorithms=[ALGORITHM],
                options={"require": REQUIRED_CLAIMS},
            )
        except pyjwt.ExpiredSignatureError as error:
            raise APIError("the token has expired: log in again", 401) from error
        except pyjwt.InvalidTokenError as error:
            raise APIError("invalid token", 401) from error
        if claims["type"] != "access" or claims["sub"] != TOKEN_SUBJECT:
            raise APIError("invalid token", 401)
        return view(*args, **kwargs)

    return checked
