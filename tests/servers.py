"""main.py as a real process on a loopback port, for the tests that need a live server; a client that honours
Retry-After, and clients that run in threads until stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Self

import requests

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "end-to-end password"
SECRET = "an-end-to-end-signing-key-of-some-length"
# How often a client that honours Retry-After asks again.
RETRIES = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_environ(**settings: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if key not in ("SESSION_PASSWORD", "ML_MODEL_PATH")}
    return {**environ, **settings}


def start_main(environ: dict[str, str], port: int, log: IO[str] | None = None) -> subprocess.Popen:
    """main.py on a port; its output goes to log, or to pipes the caller reads."""
    return subprocess.Popen(
        [sys.executable, "main.py", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=log or subprocess.PIPE,
        stderr=log or subprocess.PIPE,
        text=True,
    )


def wait_until_healthy(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server stopped: {process.stderr.read() if process.stderr else ''}")
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


@contextmanager
def running_main(
    model_path: Path, database_url: str, log_path: Path | None = None, **settings: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of main.py serving model_path, healthy; output to log_path, else to pipes."""
    port = free_port()
    environ = service_environ(
        ML_MODEL_PATH=str(model_path), SESSION_PASSWORD=PASSWORD, JWT_SECRET_KEY=SECRET, DATABASE_URL=database_url,
        **settings,
    )  # fmt: skip
    if log_path is None:
        process = start_main(environ, port)
    else:
        with log_path.open("w") as log:
            process = start_main(environ, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=10)


def ask(
    session: requests.Session, url: str, body: dict, headers: dict[str, str], *, retry_after: bool
) -> tuple[requests.Response | None, int | str, int]:
    """POST body: the last answer, its status (or the exception's name), and how many 503s were waited out."""
    waits = 0
    while True:
        try:
            answer = session.post(url, json=body, headers=headers, timeout=15)
            outcome = answer.status_code
        except requests.RequestException as error:
            answer, outcome = None, type(error).__name__
        if waits == RETRIES or not (retry_after and outcome == 503 and "Retry-After" in answer.headers):
            return answer, outcome, waits
        waits += 1
        time.sleep(float(answer.headers["Retry-After"]))


class Clients:
    """Threads running `run_client(client)`, one per client, from entering the context until leaving it; a client
    loops until `stopped` is set."""

    def __init__(self, count: int, join_seconds: float) -> None:
        self.stopped = threading.Event()
        self.lock = threading.Lock()
        self.join_seconds = join_seconds
        self.threads = [threading.Thread(target=self.run_client, args=(client,)) for client in range(count)]

    def run_client(self, client: int) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=self.join_seconds)
