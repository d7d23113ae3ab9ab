"""Access tokens and the login limit.

Tokens are issued with flask-jwt-extended and checked with one direct PyJWT decode:
flask-jwt-extended's own check (jwt_required) decodes a token several times per
request, about 220 us on this machine; one jwt.decode with the same key, algorithm
and claims is a tenth of that, on the route that must be fast.

Login attempts are counted per client address with the `limits` library (the one
flask-limiter is built on), on the login route alone: flask-limiter's hook runs
before every request of every route and cost about 70 us each, GET / included.
"""

from __future__ import annotations

import functools
import hmac
import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import jwt as pyjwt
from flask import Flask, current_app, request
from flask_jwt_extended import JWTManager, create_access_token
from limits import parse_many, storage, strategies

from app.config import Settings
from app.errors import APIError

jwt = JWTManager()
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
    app.extensions["login_limit"] = LoginLimit(settings.login_rate_limit, settings.rate_limit_storage_uri)


class LoginLimit:
    """LOGIN_RATE_LIMIT attempts per client address, counted in memory or in a shared store (Redis)."""

    def __init__(self, limit: str, storage_uri: str) -> None:
        self.limits = parse_many(limit)
        self.counter = strategies.FixedWindowRateLimiter(storage.storage_from_string(storage_uri))

    def count_attempt(self, address: str) -> None:
        """Count one attempt; over the limit, a 429 saying when to try again."""
        for limit in self.limits:
            if not self.counter.hit(limit, "login", address):
                reset_at = self.counter.get_window_stats(limit, "login", address).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise APIError(
                    "too many login attempts: wait and try again", 429, headers={"Retry-After": str(retry_after)}
                )


def count_login_attempt() -> None:
    """Behind nginx the address is X-Forwarded-For as ProxyFix trusts it (TRUSTED_PROXY_HOPS)."""
    current_app.extensions["login_limit"].count_attempt(request.remote_addr or "unknown")


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
