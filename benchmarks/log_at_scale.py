"""The log at scale, on PostgreSQL: an experiment's `status` at 10^5, 10^6 and 10^7 recommendations (time and peak
memory), and the mule's copy lag on deploy/run-stack while an experiment runs under wrk's recommend rate.

Alone: `python -m benchmarks.log_at_scale` (it trains a model when given none); `make bench` runs it after
the routes. The log is made in bulk inside PostgreSQL (tests/experiment/bulk_log.py), each size in a
database of its own (TEST_POSTGRES_URL's server, default the local one), dropped afterwards.

The copy lag is what a score waits for: a probe asks for a recommendation every PROBE_SECONDS while wrk
drives recommend, then polls PostgreSQL every POLL_SECONDS until the mule has copied it; the lag is the
time from the answer to the row being there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, make_url, select, text

from app.experiment.report import experiment_status
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.experiments import latest_experiment, start_experiment
from app.store.recommendation_log import RecommendationLog, make_engine
from app.store.tables import recommendations
from tests.deploy.test_run_stack import PASSWORD, kill_group, stack_environ, start_stack
from tests.experiment.bulk_log import load_experiment_log

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10**5, 10**6, 10**7)
STATUS_READS = 5
LAG_SECONDS = 300
PROBE_SECONDS = 0.5
POLL_SECONDS = 0.005
SERVER = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on SERVER, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def status_at(size: int, model_path: Path) -> dict:
    """The time of `experiment_status` (median of STATUS_READS, in this process) and of `status --json` in a new
    process, with that process's peak memory, for an experiment of `size` recommendations."""
    with scratch_database() as url:
        engine = make_engine(url)
        RecommendationLog(engine).create_tables()
        experiment_id = start_experiment(
            engine, share=0.5, control_version="c" * 64, candidate_version="d" * 64, candidate_model=b"",
            candidate_metadata="{}", candidate_signature="", ranking_gate_skipped=True,
        )  # fmt: skip
        began = time.perf_counter()
        load_experiment_log(engine, experiment_id=experiment_id, count=size, share=0.5, version="c" * 64)
        loaded = time.perf_counter() - began
        reads = []
        for _ in range(STATUS_READS):
            began = time.perf_counter()
            experiment_status(engine, latest_experiment(engine))
            reads.append(time.perf_counter() - began)
        engine.dispose()
        environ = stack_environ(model_path, Path(tempfile.gettempdir()), 0, url)
        began = time.perf_counter()
        status = subprocess.Popen([sys.executable, "-m", "app.experiment", "status", "--json"], cwd=ROOT, env=environ,
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        shown = status.stdout.read()
        _, exit_status, usage = os.wait4(status.pid, 0)
        command = time.perf_counter() - began
        status.returncode = os.waitstatus_to_exitcode(exit_status)
        if status.returncode != 0:
            raise SystemExit(f"status failed with exit status {status.returncode}")
    counted = sum(arm["recommendations"] for arm in json.loads(shown)["arms"])
    return {
        "recommendations": counted,
        "load_seconds": loaded,
        "status_ms": statistics.median(reads) * 1000,
        "status_command_seconds": command,
        "status_command_peak_mib": usage.ru_maxrss / 1024,  # Linux gives it in KiB
    }


def copy_lag(model_path: Path, work_dir: Path, seconds: int) -> dict:
    """The mule's copy lag (p50, p99) on deploy/run-stack with PostgreSQL, under wrk, while an experiment runs
    with a copy of the model as its candidate (as run.py's "recommend, an experiment running")."""
    from benchmarks.run import wrk  # run.py imports this module

    with scratch_database() as url:
        stack_url, stack = start_stack(model_path, work_dir, url, healthy_within=180)
        try:
            environ = stack_environ(model_path, work_dir, 0, url)
            start = [sys.executable, "-m", "app.experiment", "start", str(model_path)]
            subprocess.run(start, cwd=ROOT, env=environ, check=True, capture_output=True)
            time.sleep(3)  # every worker takes it up
            access = requests.post(f"{stack_url}/api/login", json={"session_password": PASSWORD}, timeout=10).json()
            lags: list[float] = []
            stopped = threading.Event()
            probe = threading.Thread(target=probe_lags, args=(stack_url, access["access_token"], url, lags, stopped))
            probe.start()
            try:
                load = wrk(
                    stack_url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access["access_token"]
                )
            finally:
                stopped.set()
                probe.join()
        finally:
            kill_group(stack)
    quantiles = statistics.quantiles(lags, n=100, method="inclusive")
    return {"probes": len(lags), "p50_ms": quantiles[49] * 1000, "p99_ms": quantiles[98] * 1000,
            "max_ms": max(lags) * 1000, "recommend": load}  # fmt: skip


def probe_lags(stack_url: str, access: str, database_url: str, lags: list[float], stopped: threading.Event) -> None:
    engine = make_engine(database_url)
    headers = {"Authorization": f"Bearer {access}"}
    person = {"age": 30, "gender": "F", "occupation": "writer"}
    with requests.Session() as session, engine.connect() as connection:
        while not stopped.wait(PROBE_SECONDS):
            answer = session.post(f"{stack_url}/api/recommend", json=person, headers=headers, timeout=10)
            answered = time.perf_counter()
            query = select(recommendations.c.id).where(recommendations.c.id == answer.json()["id"])
            while connection.execute(query).first() is None:
                connection.rollback()
                time.sleep(POLL_SECONDS)
            connection.rollback()
            lags.append(time.perf_counter() - answered)
    engine.dispose()


def measure(model_path: Path, work_dir: Path, sizes: tuple[int, ...] = SIZES, lag_seconds: int = LAG_SECONDS) -> dict:
    """Both parts; the copy lag only when lag_seconds is above 0."""
    report: dict = {"status": {}}
    for size in sizes:
        report["status"][str(size)] = figures = status_at(size, model_path)
        print(f"status at {size:,d} recommendations: {json.dumps(figures)}", flush=True)
    if lag_seconds > 0:
        report["copy_lag"] = copy_lag(model_path, work_dir, lag_seconds)
    print_table(report)
    return report


def print_table(report: dict) -> None:
    print(f"\n{'recommendations':>15} {'load s':>8} {'status ms':>10} {'command s':>10} {'peak MiB':>9}")
    for figures in report["status"].values():
        print(
            f"{figures['recommendations']:15,d} {figures['load_seconds']:8.1f} {figures['status_ms']:10.1f} "
            f"{figures['status_command_seconds']:10.2f} {figures['status_command_peak_mib']:9.0f}"
        )
    lag = report.get("copy_lag")
    if lag is None:
        return
    print(f"copy lag with an experiment running, recommend at {lag['recommend']['requests_per_second']:.0f} req/s: "
          f"p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms, max {lag['max_ms']:.0f} ms "
          f"({lag['probes']} probes)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="the served model (default: one trained now)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="recommendations per experiment")
    parser.add_argument(
        "--lag-seconds", type=int, default=LAG_SECONDS, help="how long to measure the copy lag (0: not)"
    )
    parser.add_argument("--out", type=Path, help="also write the figures here, as JSON")
    args = parser.parse_args()
    from benchmarks.run import ensure_wrk  # run.py imports this module

    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-log-") as scratch:
        work_dir = Path(scratch)
        model_path = args.model
        if model_path is None:
            subprocess.run([sys.executable, "-m", "app.train", "--out-dir", str(work_dir / "model")], cwd=ROOT,
                           check=True, capture_output=True)  # fmt: skip
            model_path = work_dir / "model" / MODEL_FILE_NAME
        Recommender.load(model_path)  # refuses a bad file before the long part
        report = measure(model_path, work_dir, tuple(args.sizes), args.lag_seconds)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
