"""recommend under wrk while an experiment starts: every worker loads the candidate in a thread of its own
(app/experiment/arms.py), so no request waits for the load. benchmarks/run.py measures it; the target is a p99
under 100 ms.

`start` checks the candidate first (SHA-256, loading, the accuracy gate: seconds), so the run lasts
START_RUN_FACTOR times a measured run, and the command goes in at its start: the workers take the candidate up
well inside the run, which fails the benchmark otherwise.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
START_RUN_FACTOR = 4
# What every worker needs, after the record changes, to take the candidate up (publication every second).
TAKE_UP_SECONDS = 3


def experiment_command(environ: dict[str, str], *arguments: str) -> None:
    """python -m app.experiment with the stack's settings; exits the benchmark when it fails."""
    done = subprocess.run([sys.executable, "-m", "app.experiment", *arguments], cwd=ROOT, env=environ,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"python -m app.experiment {arguments[0]} failed: {done.stderr}")


def recommend_during_a_start(
    wrk: Callable[..., dict], url: str, access: str, seconds: int, candidate: Path, environ: dict[str, str]
) -> dict:
    """wrk's figures for recommend over a run in which `start` gives candidate half of the traffic; stopped after."""
    run_seconds = seconds * START_RUN_FACTOR
    began = time.monotonic()
    took: list[float] = []

    def start() -> None:
        experiment_command(environ, "start", str(candidate))
        took.append(time.monotonic() - began)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        figures = wrk(url, "/api/recommend", run_seconds, "recommend_random.lua", BENCH_TOKEN=access)
    finally:
        starting.join()
    if not took or took[0] + TAKE_UP_SECONDS > run_seconds:
        raise SystemExit(f"`start` took {took[0] if took else 'ever'} s: longer than the run of {run_seconds} s")
    if 'recommendations_served_total{arm="candidate"}' not in requests.get(f"{url}/metrics", timeout=5).text:
        raise SystemExit("no worker answered from the candidate during the run")
    experiment_command(environ, "stop")
    time.sleep(TAKE_UP_SECONDS)  # back to the control alone before the next measurement
    return {**figures, "start_took_seconds": took[0]}
