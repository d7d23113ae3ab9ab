"""recommend under wrk while an experiment starts: every worker loads the candidate in a thread of its own
(app/experiment/arms.py), so no request waits for the load. benchmarks/run.py measures it; the target is a p99
under 100 ms.

`start` checks the candidate first (SHA-256, loading, the accuracy gate: seconds, more on a busy machine), so
wrk runs back to back, each a measured run long, until `start` has recorded the experiment, and once more: the
workers take the candidate up within a few seconds of the record, in the last run or the one before. The
figures are those of the worse of these two.
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
# What every worker needs, after a stop, to serve the control alone again (publication every second).
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
    """wrk's figures for recommend over the runs in which `start` gives candidate half of the traffic and the
    workers take it up; stopped after."""
    began = time.monotonic()
    starting = threading.Thread(target=experiment_command, args=(environ, "start", str(candidate)))
    starting.start()
    runs = []
    while starting.is_alive() or not runs:
        runs.append(wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access))
    starting.join()
    took = time.monotonic() - began
    runs.append(wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access))
    if 'recommendations_served_total{arm="candidate"}' not in requests.get(f"{url}/metrics", timeout=5).text:
        raise SystemExit("no worker answered from the candidate after `start`")
    experiment_command(environ, "stop")
    time.sleep(TAKE_UP_SECONDS)  # back to the control alone before the next measurement
    worse = max(runs[-2:], key=lambda run: run["p99_ms"])
    return {**worse, "runs": len(runs), "start_took_at_most_seconds": took}
