"""schemathesis against a live main.py: every operation of /openapi.json, valid and invalid inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app.recommender import MODEL_FILE_NAME
from app.store import sqlite_url
from tests.test_main import PASSWORD, ROOT, SECRET, free_port, service_environ, start_main, wait_until_healthy

EXAMPLES_PER_OPERATION = 300


@pytest.mark.slow
def test_the_fuzzer_finds_nothing(synthetic_model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    environ = service_environ(
        ML_MODEL_PATH=str(synthetic_model_dir / MODEL_FILE_NAME),
        SESSION_PASSWORD=PASSWORD,
        JWT_SECRET_KEY=SECRET,
        DATABASE_URL=sqlite_url(tmp_path / "fuzz.sqlite3"),
        # Logins are fuzzed too; the limit has tests of its own.
        LOGIN_RATE_LIMIT="1000000 per minute",
        LOG_LEVEL="WARNING",
    )
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("w") as log:
        server = start_main(environ, port, log)
    try:
        wait_until_healthy(url, server)
        token = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]
        result = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run", f"{url}/openapi.json",
             "--header", f"Authorization: Bearer {token}", "--max-examples", str(EXAMPLES_PER_OPERATION),
             "--mode", "all", "--seed", "20261126", "--workers", "2", "--no-color"],
            cwd=ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert result.returncode == 0, result.stdout[-5000:]
    assert "failure" not in result.stdout
    server_log = (tmp_path / "server.log").read_text()
    assert " ERROR " not in server_log and "Traceback" not in server_log, server_log[-3000:]
