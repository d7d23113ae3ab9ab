from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url

from app.config import DEFAULT_TOKEN_SECONDS, ConfigError, Settings

REQUIRED = {"ML_MODEL_PATH": "model/model.pkl", "SESSION_PASSWORD": "s3cret"}


def test_the_required_settings_and_defaults() -> None:
    settings = Settings.from_environ(REQUIRED)
    assert settings.model_path == Path("model/model.pkl")
    assert settings.session_password == "s3cret"
    assert settings.token_seconds == DEFAULT_TOKEN_SECONDS
    assert settings.database_url is None
    assert settings.log_level == "INFO"


def test_without_a_signing_key_each_start_makes_a_random_one() -> None:
    first, second = Settings.from_environ(REQUIRED), Settings.from_environ(REQUIRED)
    assert first.jwt_secret_generated
    assert len(first.jwt_secret_key) >= 32
    assert first.jwt_secret_key != second.jwt_secret_key


def test_every_setting_is_read() -> None:
    settings = Settings.from_environ(
        {
            **REQUIRED,
            "JWT_SECRET_KEY": "k" * 40,
            "JWT_ACCESS_TOKEN_EXPIRES": "2",
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/db",
            "LOG_LEVEL": "warning",
        }
    )
    assert (settings.jwt_secret_key, settings.jwt_secret_generated) == ("k" * 40, False)
    assert settings.token_seconds == 2
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1/db"
    assert settings.log_level == "WARNING"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SESSION_PASSWORD": "x"}, "ML_MODEL_PATH is not set: set it to the model file to serve"),
        ({"ML_MODEL_PATH": "m.pkl"}, "SESSION_PASSWORD is not set: set it to the password /api/login accepts"),
        ({**REQUIRED, "SESSION_PASSWORD": "  "}, "SESSION_PASSWORD is not set"),
        ({**REQUIRED, "JWT_SECRET_KEY": "short"}, "JWT_SECRET_KEY is too short"),
        (
            {**REQUIRED, "JWT_ACCESS_TOKEN_EXPIRES": "soon"},
            "JWT_ACCESS_TOKEN_EXPIRES='soon' is not valid: set it to a whole number",
        ),
        ({**REQUIRED, "JWT_ACCESS_TOKEN_EXPIRES": "0"}, "JWT_ACCESS_TOKEN_EXPIRES='0' is not valid"),
        ({**REQUIRED, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not valid"),
    ],
)
def test_a_configuration_mistake_is_one_line_saying_what_to_set(environ: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_environ(environ)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_the_login_rate_limit_and_its_storage_are_read() -> None:
    settings = Settings.from_environ(
        {**REQUIRED, "LOGIN_RATE_LIMIT": "5 per 30 seconds", "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}
    )
    assert (settings.login_rate_limit, settings.rate_limit_storage_uri) == (
        "5 per 30 seconds",
        "redis://127.0.0.1:6379",
    )
    assert Settings.from_environ(REQUIRED).login_rate_limit == "10 per minute"


def test_an_unreadable_login_rate_limit_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT='often' is not valid"):
        Settings.from_environ({**REQUIRED, "LOGIN_RATE_LIMIT": "often"})


def test_secrets_can_come_from_files_as_docker_secrets_mount_them(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from a file\n")
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "metrics").write_text("scraper\n")
    settings = Settings.from_environ(
        {
            "ML_MODEL_PATH": "model/model.pkl",
            "SESSION_PASSWORD_FILE": str(tmp_path / "password"),
            "JWT_SECRET_KEY_FILE": str(tmp_path / "key"),
            "METRICS_TOKEN_FILE": str(tmp_path / "metrics"),
        }
    )
    assert (settings.session_password, settings.jwt_secret_key) == ("from a file", "k" * 40)
    assert settings.metrics_token == "scraper"
    assert not settings.jwt_secret_generated


@pytest.mark.parametrize("name", ["SESSION_PASSWORD", "JWT_SECRET_KEY", "METRICS_TOKEN", "DATABASE_PASSWORD"])
def test_a_secret_set_both_ways_stops_the_start(name: str, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("k" * 40)
    with pytest.raises(ConfigError, match=f"both {name} and {name}_FILE are set"):
        Settings.from_environ(
            {**REQUIRED, "JWT_SECRET_KEY": "k" * 40, name: "k" * 40, f"{name}_FILE": str(tmp_path / "secret")}
        )


def test_an_unreadable_secret_file_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY_FILE=.* cannot be read"):
        Settings.from_environ({**REQUIRED, "JWT_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_the_database_password_comes_from_its_own_file_into_the_url(tmp_path: Path) -> None:
    """As compose and the stack give it: one secret file, which PostgreSQL's container reads too."""
    (tmp_path / "db_password").write_text("p@ss/w:rd%\n")
    settings = Settings.from_environ(
        {
            **REQUIRED,
            "DATABASE_URL": "postgresql+psycopg://postgres@db:5432/recommender",
            "DATABASE_PASSWORD_FILE": str(tmp_path / "db_password"),
        }
    )
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "postgres",
        "p@ss/w:rd%",
        "db",
        5432,
        "recommender",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DATABASE_PASSWORD": "p"}, "DATABASE_PASSWORD is set without DATABASE_URL: set DATABASE_URL"),
        (
            {"DATABASE_PASSWORD": "p", "DATABASE_URL": "postgresql+psycopg://postgres:other@db/recommender"},
            "both DATABASE_URL's password and DATABASE_PASSWORD are set: set only one of them",
        ),
        ({"DATABASE_PASSWORD": "p", "DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL"),
    ],
)
def test_a_database_password_that_cannot_apply_stops_the_start(environ: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_environ({**REQUIRED, **environ})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
