"""Configuration: the only module that reads the environment.

Everything is checked at start; a mistake raises ConfigError with one line
saying what to set, which main.py prints before it exits.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from limits import parse_many

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_TOKEN_SECONDS = 3600
# The largest request body the API reads; nginx is given the same limit.
MAX_BODY_BYTES = 16 * 1024
DEFAULT_LOGIN_RATE_LIMIT = "10 per minute"
# Settings that may instead be read from the file NAME_FILE names (Docker secrets mount them as files).
SECRET_FILE_SETTINGS = ("SESSION_PASSWORD", "JWT_SECRET_KEY", "METRICS_TOKEN", "DATABASE_PASSWORD")
# HS256 wants a key of at least 256 bits.
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The service cannot start as configured; the message says what to set or fix."""


@dataclass(frozen=True)
class Settings:
    model_path: Path
    session_password: str
    jwt_secret_key: str
    jwt_secret_generated: bool = False
    token_seconds: int = DEFAULT_TOKEN_SECONDS
    # None: a SQLite file in the Flask instance folder.
    database_url: str | None = None
    log_level: str = "INFO"
    # Login attempts per client address (like "10 per minute"), and where the counts live.
    login_rate_limit: str = DEFAULT_LOGIN_RATE_LIMIT
    rate_limit_storage_uri: str = "memory://"
    # Proxies in front whose X-Forwarded-For is believed: 0 reached directly, 1 behind the project's nginx.
    trusted_proxy_hops: int = 0
    # Set by deploy/run-stack: where workers journal recommendations for the mule to copy into the database.
    journal_dir: Path | None = None
    # Set by deploy/run-stack: where the mule publishes the experiment's state for the workers to follow.
    experiment_dir: Path | None = None
    # Set by deploy/run-stack: where every uwsgi worker writes its metrics.
    metrics_multiprocess_dir: str | None = None
    # When set, /metrics answers only requests that carry it ("Authorization: Bearer <token>").
    metrics_token: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        environ = _with_secret_files(environ)
        model_path = _required(environ, "ML_MODEL_PATH", "the model file to serve (model/model.pkl or a .tar.gz)")
        password = _required(environ, "SESSION_PASSWORD", "the password /api/login accepts")
        secret = environ.get("JWT_SECRET_KEY", "")
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"JWT_SECRET_KEY is too short: set it to at least {MIN_SECRET_LENGTH} random characters")
        return cls(
            model_path=Path(model_path),
            session_password=password,
            jwt_secret_key=secret or secrets.token_urlsafe(32),
            jwt_secret_generated=not secret,
            token_seconds=_whole_number(environ, "JWT_ACCESS_TOKEN_EXPIRES", DEFAULT_TOKEN_SECONDS, minimum=1),
            database_url=_database_url(environ),
            log_level=_log_level(environ),
            login_rate_limit=_rate_limit(environ),
            rate_limit_storage_uri=environ.get("RATELIMIT_STORAGE_URI") or "memory://",
            trusted_proxy_hops=_whole_number(environ, "TRUSTED_PROXY_HOPS", 0, minimum=0),
            journal_dir=_path(environ, "RECOMMENDATION_JOURNAL_DIR"),
            experiment_dir=_path(environ, "EXPERIMENT_DIR"),
            metrics_multiprocess_dir=environ.get("PROMETHEUS_MULTIPROC_DIR") or None,
            metrics_token=environ.get("METRICS_TOKEN") or None,
        )


def _with_secret_files(environ: Mapping[str, str]) -> Mapping[str, str]:
    """The environment with each NAME_FILE of SECRET_FILE_SETTINGS read into NAME (Docker secrets)."""
    values = dict(environ)
    for name in SECRET_FILE_SETTINGS:
        path = environ.get(f"{name}_FILE", "").strip()
        if not path:
            continue
        if environ.get(name):
            raise ConfigError(f"both {name} and {name}_FILE are set: set only one of them")
        try:
            values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read ({error}): name a readable file") from error
    return values


def _database_url(environ: Mapping[str, str]) -> str | None:
    """DATABASE_URL with DATABASE_PASSWORD put in as its password: the URL is configuration, the password a
    secret (one file that PostgreSQL's container reads too), so neither has to hold the other."""
    url = environ.get("DATABASE_URL") or None
    password = environ.get("DATABASE_PASSWORD", "")
    if not password:
        return url
    if url is None:
        raise ConfigError("DATABASE_PASSWORD is set without DATABASE_URL: set DATABASE_URL to the database it opens")
    # Here, not at the top: the model side (app.data) reads ML100K_DIR from this module and imports no SQL.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError(
            "DATABASE_URL is not a database URL: set it like postgresql+psycopg://user@host/db"
        ) from error
    if parsed.password is not None:
        raise ConfigError("both DATABASE_URL's password and DATABASE_PASSWORD are set: set only one of them")
    return parsed.set(password=password).render_as_string(hide_password=False)


def _required(environ: Mapping[str, str], name: str, meaning: str) -> str:
    value = environ.get(name, "")
    if not value.strip():
        raise ConfigError(f"{name} is not set: set it to {meaning}")
    return value


def _path(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "").strip()
    return Path(value) if value else None


def _whole_number(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"{name}={value!r} is not valid: set it to a whole number, at least {minimum}")
    return int(value)


def _rate_limit(environ: Mapping[str, str]) -> str:
    value = environ.get("LOGIN_RATE_LIMIT", "").strip() or DEFAULT_LOGIN_RATE_LIMIT
    try:
        parse_many(value)
    except ValueError as error:
        raise ConfigError(f"LOGIN_RATE_LIMIT={value!r} is not valid: set it like '10 per minute'") from error
    return value


def _log_level(environ: Mapping[str, str]) -> str:
    level = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={level!r} is not valid: set it to one of {', '.join(LOG_LEVELS)}")
    return level


def ml100k_dir() -> Path | None:
    """ML100K_DIR: a local copy of ml-100k to use instead of downloading one."""
    value = os.environ.get("ML100K_DIR", "").strip()
    return Path(value) if value else None
