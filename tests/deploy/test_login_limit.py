"""The login limit under guessing in parallel: two stacks (replicas) of two workers each, sharing Redis.

Redis is reached through a relay that delays each exchange by REDIS_DELAY_SECONDS, as a Redis on another host
of a busy network would: a limit that checks, then counts, lets every guess that arrives within that time
through (measured with the old code: 11 and 12 answers of 401 in two runs), and one that counts as it
checks cannot (10).
Every guess comes from one made-up client address (X-Forwarded-For, believed through TRUSTED_PROXY_HOPS=2,
as behind the compose or Swarm balancer), so that no other test's counts, kept in the same Redis, mix in.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app.model.recommender import MODEL_FILE_NAME
from tests.deploy.test_run_stack import kill_group, start_stack
from tests.relay import Relay

pytestmark = pytest.mark.stack

LIMIT = 10
GUESSES = 60
REDIS_DELAY_SECONDS = 0.02


def test_guesses_at_once_across_two_replicas_get_at_most_the_limit_of_401s(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    redis = Relay(("127.0.0.1", 6379), delay=REDIS_DELAY_SECONDS)
    redis.open()
    settings = {
        "LOGIN_RATE_LIMIT": f"{LIMIT} per minute",
        "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{redis.port}",
        "TRUSTED_PROXY_HOPS": "2",
    }
    stacks = []
    try:
        for replica in ("a", "b"):
            (tmp_path / replica).mkdir()
            stacks.append(start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / replica, **settings))
        address = f"2001:db8::{uuid.uuid4().hex[:4]}"
        ready = threading.Barrier(GUESSES)

        def guess(number: int) -> int:
            url = stacks[number % 2][0]
            ready.wait()
            answer = requests.post(
                f"{url}/api/login", json={"session_password": f"guess {number}"},
                headers={"X-Forwarded-For": address}, timeout=30,
            )  # fmt: skip
            return answer.status_code

        with ThreadPoolExecutor(GUESSES) as pool:
            answered = Counter(pool.map(guess, range(GUESSES)))
    finally:
        for _, process in stacks:
            kill_group(process)
        redis.cut()
    print(f"login limit figure: {GUESSES} wrong guesses at once across 2 replicas: {dict(answered)}")
    assert answered == {401: LIMIT, 429: GUESSES - LIMIT}
