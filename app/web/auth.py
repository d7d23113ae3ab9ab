"""Access tokens and the login limit.

Tokens are issued with flask-jwt-extended and checked with one direct PyJWT decode:
flask-jwt-extended's own check (jwt_required) decodes a token several times per
request, about 220 us on this machine; one jwt.decode with the same key, algorithm
and claims is a tenth of that, on the route that must be fast. A client sends the
same token with every request: each process verifies a token once (41 us, most of
it PyJWT checking the base64 character by character) and then only checks that it
has not expired since.

Failed logins are counted per client address with the `limits` library (the one
flask-limiter is built on), on the login route alone: flask-limiter's hook runs
before every request of every route and cost about 70 us each, GET / included.
Only failures count, so that people behind one address who know the password are
never locked out; once an address has used up its failures, every login from it
is refused until the window moves on, the right password included.
"""

from __future__ import annotations

import functools
import hmac
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import ParamSpec, TypeVar

import jwt as pyjwt
from flask import Flask, current_app, request
from flask_jwt_extended import JWTManager, create_access_token
from limits import RateLimitItem, parse_many, storage, strategies
from limits.errors import ConfigurationError, StorageError

from app.config import ConfigError, Settings
from app.web.errors import APIError

jwt = JWTManager()
ALGORITHM = "HS256"
TOKEN_SUBJECT = "session"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type"]
# Verified tokens remembered per process (about 1 KiB each); a token not among them is verified again.
VERIFIED_TOKENS_KEPT = 4096

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
    """LOGIN_RATE_LIMIT failed logins per client address in a moving window, in memory or in a shared store (Redis)."""

    # A shared store that does not answer within this fails the login with a 503, never hangs it.
    STORE_TIMEOUT_SECONDS = 2

    def __init__(self, limit: str, storage_uri: str) -> None:
        self.limits = parse_many(limit)
        try:
            store = storage.storage_from_string(
                storage_uri,
                wrap_exceptions=True,
                socket_connect_timeout=self.STORE_TIMEOUT_SECONDS,
                socket_timeout=self.STORE_TIMEOUT_SECONDS,
            )
        except ConfigurationError as error:
            raise ConfigError(
                f"RATELIMIT_STORAGE_URI={storage_uri!r} cannot be used ({error}): set it to memory:// or redis://HOST:PORT"
            ) from error
        self.counter = strategies.MovingWindowRateLimiter(store)

    def check(self, address: str) -> None:
        """A 429 saying when to try again once the address has used up its failed attempts."""
        with self._store_answering():
            refused = [limit for limit in self.limits if not self.counter.test(limit, "login", address)]
        if refused:
            raise self._too_many(refused[0], address)

    def count_failure(self, address: str) -> None:
        """Count a wrong password, or answer 429 instead of 401 when it is one more than the limit allows.

        The hit is the check: the store counts and compares in one step (a Lua script in Redis, a lock in
        memory), so guesses that arrive together, at any workers and replicas, cannot all pass a check made
        before any of them is counted.
        """
        with self._store_answering():
            refused = [limit for limit in self.limits if not self.counter.hit(limit, "login", address)]
        if refused:
            raise self._too_many(refused[0], address)

    def _too_many(self, limit: RateLimitItem, address: str) -> APIError:
        with self._store_answering():
            reset_at = self.counter.get_window_stats(limit, "login", address).reset_time
        retry_after = max(1, math.ceil(reset_at - time.time()))
        return APIError(
            "too many failed login attempts: wait and try again", 429, headers={"Retry-After": str(retry_after)}
        )

    @staticmethod
    @contextmanager
    def _store_answering() -> Iterator[None]:
        try:
            yield
        except StorageError as error:
            current_app.logger.error("the login limit's store is unavailable: %s", error.storage_error)
            raise APIError("logins cannot be checked right now; try again shortly", 503) from error


def client_address() -> str:
    """Behind nginx the address is X-Forwarded-For as ProxyFix trusts it (TRUSTED_PROXY_HOPS)."""
    return request.remote_addr or "unknown"


def login_limit() -> LoginLimit:
    return current_app.extensions["login_limit"]


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing says nothing about the password."""
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_token() -> str:
    """The token of 'Authorization: Bearer <token>'; empty when the header is missing or malformed."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme == "Bearer" else ""


def bearer_matches(expected: str) -> bool:
    return password_matches(bearer_token(), expected)


def issue_token() -> str:
    return create_access_token(identity=TOKEN_SUBJECT)


def require_token(view: Callable[Arguments, Result]) -> Callable[Arguments, Result]:
    """Answer 401 unless the request carries 'Authorization: Bearer <a valid access token>'."""

    @functools.wraps(view)
    def checked(*args: Arguments.args, **kwargs: Arguments.kwargs) -> Result:
        token = bearer_token()
        if not token:
            raise APIError("missing or malformed Authorization header: send 'Bearer <access_token>'", 401)
        try:
            claims = verified_claims(token, current_app.config["JWT_SECRET_KEY"])
        except pyjwt.InvalidTokenError as error:
            raise APIError("invalid token", 401) from error
        if claims["exp"] <= time.time():  # as PyJWT decides it, for a token verified earlier
            raise APIError("the token has expired: log in again", 401)
        return view(*args, **kwargs)

    return checked


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def verified_claims(token: str, key: str) -> dict:
    """The claims of a session access token signed with key; expiry is the caller's to check, each time.

    Raises PyJWT's InvalidTokenError (nothing is remembered then).
    """
    claims = pyjwt.decode(token, key, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS, "verify_exp": False})
    if claims["type"] != "access" or claims["sub"] != TOKEN_SUBJECT:
        raise pyjwt.InvalidTokenError("not a session access token")
    return claims
