from __future__ import annotations

import base64
import json
import logging
import os
import time
from datetime import timedelta

import jwt as pyjwt
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import ConfigError, Settings
from tests.conftest import JWT_SECRET, PASSWORD
from tests.servers import free_port


def test_login_with_the_password_gives_a_token(client: FlaskClient) -> None:
    response = client.post("/api/login", json={"session_password": PASSWORD})
    assert response.status_code == 200
    assert set(response.get_json()) == {"access_token"}


def test_login_with_a_wrong_password_is_401_and_logged_as_warning_without_it(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.post("/api/login", json={"session_password": "guess-123"})
    assert response.status_code == 401
    assert response.get_json() == {"message": "wrong password"}
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert any("refused login from 127.0.0.1" in record.getMessage() for record in warnings)
    assert "guess-123" not in caplog.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "session_password: required"),
        ({"session_password": 1234}, "session_password: Input should be a valid string"),
        ({"session_password": None}, "session_password: Input should be a valid string"),
        ({"session_password": PASSWORD, "user": "x"}, "user: unknown field"),
    ],
)
def test_login_without_a_string_password_is_400(client: FlaskClient, body: dict, message: str) -> None:
    response = client.post("/api/login", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"message": message}


def test_protected_answers_with_a_valid_token(client: FlaskClient, auth_headers: dict) -> None:
    response = client.get("/protected", headers=auth_headers)
    assert response.status_code == 200
    assert response.get_json() == {"message": "Protected"}


def forge(payload: dict, key: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(payload, key, algorithm=algorithm)


def unsigned(payload: dict) -> str:
    def part(document: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def claims() -> dict:
    now = int(time.time())
    return {"sub": "session", "type": "access", "fresh": False, "jti": "x", "iat": now, "nbf": now, "exp": now + 600}


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    document["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-token",
        "Bearer a.b.c",
        "Bearer " + "x" * 5000,
        "Bearer " + forge(claims(), key="another-key-of-a-decent-length-for-hs256"),
        "Bearer " + unsigned(claims()),
        "Bearer " + forge({**claims(), "exp": int(time.time()) - 10}),
        "Bearer " + forge(claims(), key=JWT_SECRET * 2, algorithm="HS512"),
    ],
    ids=[
        "missing", "empty", "bearer-only", "bearer-space", "basic", "garbage", "three-parts", "huge",
        "other-key", "alg-none", "expired", "other-algorithm",
    ],
)  # fmt: skip
def test_every_bad_token_is_401_with_a_json_message(client: FlaskClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("get", "/protected"), ("post", "/api/recommend"), ("post", "/api/recommend/score")):
        response = getattr(client, method)(path, headers=headers, json={})
        assert response.status_code == 401, (path, response.get_data())
        assert set(response.get_json()) == {"message"}


def test_a_tampered_token_is_401(client: FlaskClient, auth_headers: dict) -> None:
    token = auth_headers["Authorization"].removeprefix("Bearer ")
    response = client.get("/protected", headers={"Authorization": f"Bearer {tampered(token)}"})
    assert response.status_code == 401


def test_a_token_of_another_server_key_is_401(settings: Settings, auth_headers: dict) -> None:
    other = create_app(Settings(**{**vars(settings), "jwt_secret_key": "x" * 48})).test_client()
    assert other.get("/protected", headers=auth_headers).status_code == 401


def test_a_two_second_token_is_refused_once_it_expires(settings: Settings) -> None:
    app: Flask = create_app(Settings(**{**vars(settings), "token_seconds": 2}))
    client = app.test_client()
    token = client.post("/api/login", json={"session_password": PASSWORD}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/protected", headers=headers).status_code == 200
    time.sleep(2.5)
    response = client.get("/protected", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"message": "the token has expired: log in again"}
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == timedelta(seconds=2)


def limited_client(settings: Settings, **changes: object) -> FlaskClient:
    return create_app(Settings(**{**vars(settings), "login_rate_limit": "3 per minute", **changes})).test_client()


def test_login_attempts_over_the_limit_are_429_with_retry_after(settings: Settings) -> None:
    client = limited_client(settings)
    statuses = [client.post("/api/login", json={"session_password": "guess"}).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]
    refused = client.post("/api/login", json={"session_password": PASSWORD})
    assert refused.status_code == 429
    assert refused.get_json() == {"message": "too many failed login attempts: wait and try again"}
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_successful_logins_do_not_count_so_an_office_behind_one_address_is_never_locked_out(
    settings: Settings,
) -> None:
    client = limited_client(settings)
    assert {client.post("/api/login", json={"session_password": PASSWORD}).status_code for _ in range(20)} == {200}
    statuses = [client.post("/api/login", json={"session_password": "guess"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_a_login_limit_store_that_is_away_answers_503_and_says_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = limited_client(settings, rate_limit_storage_uri=f"redis://127.0.0.1:{free_port()}")
    refused = client.post("/api/login", json={"session_password": PASSWORD})
    assert refused.status_code == 503
    assert refused.get_json() == {"message": "logins cannot be checked right now; try again shortly"}
    assert "the login limit's store is unavailable" in caplog.text


def test_an_unknown_login_limit_store_stops_the_service_at_start(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="^RATELIMIT_STORAGE_URI='mongo://x' cannot be used .*: set it to memory://"):
        create_app(Settings(**{**vars(settings), "rate_limit_storage_uri": "mongo://x"}))


def test_a_forged_forwarded_header_does_not_escape_the_limit_when_reached_directly(settings: Settings) -> None:
    client = limited_client(settings)
    for number in range(3):
        client.post("/api/login", json={"session_password": "guess"}, headers={"X-Forwarded-For": f"10.0.0.{number}"})
    forged = client.post("/api/login", json={"session_password": "guess"}, headers={"X-Forwarded-For": "10.9.9.9"})
    assert forged.status_code == 429


def test_behind_one_proxy_each_client_address_has_its_own_limit(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = limited_client(settings, trusted_proxy_hops=1)
    for _ in range(3):
        client.post("/api/login", json={"session_password": "guess"}, headers={"X-Forwarded-For": "203.0.113.7"})
    assert (
        client.post(
            "/api/login", json={"session_password": "x"}, headers={"X-Forwarded-For": "203.0.113.7"}
        ).status_code
        == 429
    )
    other = client.post("/api/login", json={"session_password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.8"})
    assert other.status_code == 200
    assert "refused login from 203.0.113.7" in caplog.text


def test_every_answer_says_nosniff_and_loads_nothing(client: FlaskClient) -> None:
    for response in (client.get("/"), client.get("/nowhere"), client.post("/api/login", json={})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.service
def test_servers_sharing_redis_share_the_login_limit(settings: Settings) -> None:
    storage = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    key = {"login_rate_limit": "2 per minute", "rate_limit_storage_uri": storage}
    first, second = limited_client(settings, **key), limited_client(settings, **key)
    redis.Redis.from_url(storage).flushdb()
    assert first.post("/api/login", json={"session_password": "guess"}).status_code == 401
    assert second.post("/api/login", json={"session_password": PASSWORD}).status_code == 200
    assert second.post("/api/login", json={"session_password": "guess"}).status_code == 401
    assert first.post("/api/login", json={"session_password": PASSWORD}).status_code == 429
    assert second.post("/api/login", json={"session_password": PASSWORD}).status_code == 429
