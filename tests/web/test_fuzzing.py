"""schemathesis against a live main.py: every operation of /openapi.json, valid and invalid inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_log import sqlite_url
from tests.servers import PASSWORD, ROOT, running_main

EXAMPLES_PER_OPERATION = 300


@pytest.mark.slow
def test_the_fuzzer_finds_nothing(synthetic_model_dir: Path, tmp_path: Path) -> None:
    with running_main(
        synthetic_model_dir / MODEL_FILE_NAME,
        sqlite_url(tmp_path / "fuzz.sqlite3"),
        tmp_path / "server.log",
        # Logins are fuzzed too; the limit has tests of its own.
        LOGIN_RATE_LIMIT="1000000 per minute",
        LOG_LEVEL="WARNING",
    ) as (url, _):
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
        result = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run", f"{url}/openapi.json",
             "--header", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES_PER_OPERATION),
             "--mode", "all", "--seed", "20261126", "--workers", "2", "--no-color"],
            cwd=ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:]
    assert "failure" not in result.stdout
    server_log = (tmp_path / "server.log").read_text()
    assert " ERROR " not in server_log and "Traceback" not in server_log, server_log[-3000:]
