"""Every string field of every route, fuzzed in process with the characters a fixed-seed fuzzer never sends:
non-ASCII letters and digits, control characters, and the surrogate range and its edges (sent as JSON escapes,
the only way a lone surrogate crosses the wire). The seed changes on every run; FUZZ_SEED=<seed> replays one.
Each answer is the API's: a JSON message with a 4xx, or the route's 200, and never an ERROR logged."""

from __future__ import annotations

import json
import logging
import os
import secrets

import hypothesis
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PASSWORD

SEED = int(os.environ.get("FUZZ_SEED") or secrets.randbelow(2**32))
EXAMPLES = 150
# Unicode's letters and digits of every script, controls, format and private-use characters, lone surrogates,
# and the code points beside the surrogate range (U+D7FF answered 500 before ids were checked whole).
CHARACTERS = st.one_of(
    st.characters(categories=["Lu", "Ll", "Lo", "Nd", "No", "Cc", "Cf", "Co", "Cs", "Zs"]),
    st.sampled_from(["\ud7ff", "\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\x00", "\x7f", "\u2028"]),
    st.sampled_from("0123456789abcdef"),
)
# Any length up to 40, and often exactly an id's (32), where an id is read further.
TEXT = st.one_of(st.text(CHARACTERS, max_size=40), st.text(CHARACTERS, min_size=32, max_size=32))
ANSWERS = {200, 400, 401, 413, 429}


def valid_bodies(client: FlaskClient, headers: dict[str, str]) -> dict[str, dict]:
    """A body each route takes, to have one string field of it replaced at a time."""
    answer = client.post("/api/recommend", json={"age": 30, "gender": "F", "occupation": "writer"}, headers=headers)
    recommended = answer.get_json()
    return {
        "/api/login": {"session_password": PASSWORD},
        "/api/recommend": {"age": 30, "gender": "F", "occupation": "writer", "client": "a-client"},
        "/api/recommend/score": {"id": recommended["id"], "movie": recommended["recommendations"][0], "score": 4},
    }


FIELDS = [
    ("/api/login", "session_password"),
    ("/api/recommend", "gender"),
    ("/api/recommend", "occupation"),
    ("/api/recommend", "client"),
    ("/api/recommend/score", "id"),
    ("/api/recommend/score", "movie"),
]


def test_the_table_holds_every_string_field_of_every_route(client: FlaskClient) -> None:
    """Read from /openapi.json: a new string field (or route) must join FIELDS."""
    document = client.get("/openapi.json").get_json()
    strings = set()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is None:
                continue
            schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
            strings |= {(path, name) for name, field in schema["properties"].items() if field.get("type") == "string"}
    assert strings == set(FIELDS)


@pytest.mark.parametrize(("path", "field"), FIELDS)
def test_any_string_in_any_field_is_answered_by_the_api(
    client: FlaskClient, auth_headers: dict[str, str], path: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    print(f"fuzz seed {SEED}: FUZZ_SEED={SEED} replays this run")
    bodies = valid_bodies(client, auth_headers)

    @hypothesis.seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(value=TEXT)
    def answered(value: str) -> None:
        body = json.dumps({**bodies[path], field: value})  # ASCII, with lone surrogates escaped
        with caplog.at_level(logging.ERROR):
            caplog.clear()
            answer = client.post(path, data=body, content_type="application/json", headers=auth_headers)
            errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
        assert answer.status_code in ANSWERS, (SEED, value, answer.status_code, answer.get_data(as_text=True))
        assert answer.is_json and errors == [], (SEED, value, errors)
        if answer.status_code == 400:
            assert answer.get_json()["message"].startswith((f"{field}: ", "the body")), (SEED, value)

    answered()
