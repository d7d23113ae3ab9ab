"""Benchmark the API on deploy/run-stack (nginx + uwsgi) with wrk; `make bench` runs it.

Trains a fresh model, starts the stack on a loopback port, and drives each route with
wrk (2 threads, 32 connections) after a warm-up. Prints requests/s, p50 and p99 and
each route's ratio to GET /, and writes benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks import log_at_scale
from benchmarks.experiment_start import experiment_command, recommend_during_a_start

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "benchmarks"
PASSWORD = "benchmark"
FIXED_TRIPLE = {"age": 28, "gender": "F", "occupation": "engineer"}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
EXPLAIN_ROUNDS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_stack(model_path: Path, work_dir: Path, app_module: str = "main"):
    """deploy/run-stack on a free loopback port; yields its base URL, process and environment."""
    port = free_port()
    environ = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
        "APP_MODULE": app_module,
        "ML_MODEL_PATH": str(model_path),
        "SESSION_PASSWORD": PASSWORD,
        "JWT_SECRET_KEY": "a-benchmark-signing-key-of-decent-length",
        "DATABASE_URL": f"sqlite:///{work_dir / f'{app_module}-{port}.sqlite3'}",
        "RECOMMENDATION_JOURNAL_DIR": str(work_dir / f"journal-{app_module}-{port}"),
        "EXPERIMENT_DIR": str(work_dir / f"experiment-{app_module}-{port}"),
    }  # LOG_LEVEL as deployed (INFO): a log line per request
    with (work_dir / f"stack-{app_module}-{port}.log").open("w") as log:
        process = subprocess.Popen(
            [str(ROOT / "deploy" / "run-stack")], env=environ, stdout=log, stderr=log, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the stack did not start: see {log.name}")
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        yield url, process, environ
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def token(url: str) -> str:
    return requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5).json()["access_token"]


def wrk(url: str, path: str, seconds: int, script: str | None = None, **environ: str) -> dict:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if script:
        command += ["-s", str(HERE / script)]
    result = subprocess.run(
        [*command, f"{url}{path}"], env={**os.environ, **environ}, capture_output=True, text=True, check=True
    )
    return parse_wrk(result.stdout)


def parse_wrk(output: str) -> dict:
    def latency(percentile: str) -> float:
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
        return float(value) * UNITS[unit]

    total = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": total,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def worker_memory(process: subprocess.Popen) -> dict:
    """PSS of all uwsgi workers together against the RSS of one: how much of the model the fork left shared."""
    found = subprocess.run(["pgrep", "-g", str(process.pid), "-f", "uWSGI worker"], capture_output=True, text=True)
    pids = found.stdout.split()

    def kib(pid: str, field: str) -> int:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))

    pss = sum(kib(pid, "Pss") for pid in pids)
    one_rss = max(kib(pid, "Rss") for pid in pids)
    return {"workers": len(pids), "pss_all_mib": pss / 1024, "rss_one_mib": one_rss / 1024}


def swap_under_load(
    url: str, process: subprocess.Popen, model_path: Path, work_dir: Path, seconds: int, access: str
) -> dict:
    """recommend under wrk while deploy/swap-model puts a copy of the model in place, a third of the way in
    (a chain reload: the workers are replaced one at a time)."""
    master = subprocess.run(["pgrep", "-g", str(process.pid), "-f", "^uWSGI master"], capture_output=True, text=True,
                            check=True).stdout.split()[0]  # fmt: skip
    next_model = work_dir / "next-model"
    shutil.copytree(model_path.parent, next_model)
    swap = threading.Timer(seconds / 3, subprocess.run, args=(
        [sys.executable, str(ROOT / "deploy" / "swap-model"), str(next_model / model_path.name), "--pid", master],
    ), kwargs={"env": {**os.environ, "ML_MODEL_PATH": str(model_path)}, "check": True})  # fmt: skip
    swap.start()
    try:
        return wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access)
    finally:
        swap.join()


def with_and_without_explain(url: str, access: str, seconds: int) -> tuple[dict, dict]:
    """recommend for random people without, then with explain, in turns (EXPLAIN_ROUNDS each, after a warm-up):
    the machine's throughput moves between runs by more than explain costs. The median run of each."""
    runs = {"false": [], "true": []}
    for explain in runs:
        wrk(url, "/api/recommend", 3, "recommend_random.lua", BENCH_TOKEN=access, BENCH_EXPLAIN=explain)
    for _ in range(EXPLAIN_ROUNDS):
        for explain, figures in runs.items():
            figures.append(
                wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access, BENCH_EXPLAIN=explain)
            )
    return tuple(
        sorted(figures, key=lambda run: run["requests_per_second"])[EXPLAIN_ROUNDS // 2] for figures in runs.values()
    )


def during_an_experiment(url: str, access: str, seconds: int, model_path: Path, environ: dict[str, str]) -> dict:
    """recommend for random people while half the traffic goes to a candidate (a copy of the model, loaded by
    every worker beside the control): the median of EXPLAIN_ROUNDS runs, after a warm-up."""
    experiment_command(environ, "start", str(model_path))
    time.sleep(3)  # every worker takes it up (app/experiment/publication.py publishes every second)
    wrk(url, "/api/recommend", 3, "recommend_random.lua", BENCH_TOKEN=access)
    runs = [
        wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access) for _ in range(EXPLAIN_ROUNDS)
    ]
    experiment_command(environ, "stop")
    time.sleep(3)  # back to the control alone before the next measurement
    return sorted(runs, key=lambda run: run["requests_per_second"])[EXPLAIN_ROUNDS // 2]


def measure(model_path: Path, work_dir: Path, seconds: int) -> dict:
    results = {}
    with running_stack(model_path, work_dir) as (url, process, environ):
        access = token(url)
        wrk(url, "/", 3)  # warm-up: connections, nginx, the workers' first requests
        results["GET /"] = wrk(url, "/", seconds)
        results["recommend, random people"], results["recommend with explain, random people"] = (
            with_and_without_explain(url, access, seconds)
        )
        results["recommend, one person"] = wrk(
            url, "/api/recommend", seconds, "post_json.lua", BENCH_TOKEN=access, BENCH_BODY=json.dumps(FIXED_TRIPLE)
        )
        headers = {"Authorization": f"Bearer {access}"}
        popular = requests.post(f"{url}/api/recommend", json={**FIXED_TRIPLE, "max_recs": 100}, headers=headers,
                                timeout=5).json()["recommendations"]  # fmt: skip
        results["recommend with 5 rated titles, random people"] = wrk(
            url, "/api/recommend", seconds, "recommend_rated.lua", BENCH_TOKEN=access,
            BENCH_TITLES="\n".join(json.dumps(title) for title in popular),
        )  # fmt: skip
        answer = requests.post(f"{url}/api/recommend", json=FIXED_TRIPLE, headers=headers, timeout=5).json()
        score = {"id": answer["id"], "movie": answer["recommendations"][0], "score": 4}
        results["score"] = wrk(
            url, "/api/recommend/score", seconds, "post_json.lua", BENCH_TOKEN=access, BENCH_BODY=json.dumps(score)
        )
        memory = worker_memory(process)
        results["recommend, an experiment running"] = during_an_experiment(url, access, seconds, model_path, environ)
        results["recommend during a start"] = recommend_during_a_start(wrk, url, access, seconds, model_path, environ)
        results["recommend during a model swap"] = swap_under_load(url, process, model_path, work_dir, seconds, access)
    for label, module in (("recommend, fixed list (no ranking)", "benchmarks.fixed_list_app"),
                          ("recommend, predict per request (naive)", "benchmarks.naive_app")):  # fmt: skip
        with running_stack(model_path, work_dir, module) as (url, _, _):
            access = token(url)
            wrk(url, "/", 3)
            results[label] = wrk(url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access)
    floor = results["GET /"]
    for figures in results.values():
        figures["ratio_to_get_root"] = figures["requests_per_second"] / floor["requests_per_second"]
        figures["p99_ratio_to_get_root"] = figures["p99_ms"] / floor["p99_ms"]
    return {"routes": results, "memory": memory}


def through_balancer(image: str, seconds: int) -> dict:
    """recommend through docker-compose.yml's balancer with 1, then 2 replicas of IMAGE. No target: on this
    machine's cores the replicas share the CPUs with the balancer, PostgreSQL and wrk."""
    from tests.docker.conftest import compose_command, make_compose_secrets

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environ = {**os.environ, "IMAGE": image, "PORT": str(port)}
    compose = [*compose_command(), "-p", f"bench{os.getpid()}", "-f", str(ROOT / "docker-compose.yml")]
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-secrets-") as secrets:
            environ["SECRETS_DIR"] = str(make_compose_secrets(Path(secrets), PASSWORD))
            for replicas in (1, 2):
                subprocess.run([*compose, "up", "-d", "--no-build", "--scale", f"api={replicas}"],
                               env=environ, cwd=ROOT, check=True, capture_output=True)  # fmt: skip
                wait_for_healthy_replicas(compose, environ, replicas)
                access = token(url)
                wrk(url, "/", 3)
                results[f"recommend through the balancer, {replicas} replica(s)"] = wrk(
                    url, "/api/recommend", seconds, "recommend_random.lua", BENCH_TOKEN=access
                )
    finally:
        # Without the secrets, gone by now: `down` needs none.
        subprocess.run([*compose, "down", "--volumes"], env=environ, cwd=ROOT, check=True, capture_output=True)
    return results


def wait_for_healthy_replicas(compose: list[str], environ: dict[str, str], replicas: int) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        containers = subprocess.run([*compose, "ps", "-q", "api"], env=environ, cwd=ROOT, capture_output=True,
                                    text=True, check=True).stdout.split()  # fmt: skip
        inspect = ["docker", "inspect", "--format", "{{.State.Health.Status}}"]
        states = [subprocess.run([*inspect, c], capture_output=True, text=True).stdout.strip() for c in containers]
        if states == ["healthy"] * replicas:
            time.sleep(2)  # the balancer asks Docker's DNS again every second
            return
        time.sleep(1)
    raise SystemExit(f"{replicas} api replica(s) were not healthy within 180 s")


def model_figures(model_path: Path) -> dict:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", f"from app.recommender import Recommender; Recommender.load({str(model_path)!r})"],
        cwd=ROOT,
        check=True,
    )
    return {"size_mib": model_path.stat().st_size / 2**20, "load_seconds_in_new_process": time.perf_counter() - started}


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "date": datetime.now(UTC).date().isoformat()}


def print_table(report: dict) -> None:
    print(f"\n{'route':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'x GET /':>8} {'p99 x':>6} {'non-2xx':>8}")
    for route, figures in report["routes"].items():
        print(
            f"{route:42} {figures['requests_per_second']:9.0f} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} "
            f"{figures['ratio_to_get_root']:8.3f} {figures['p99_ratio_to_get_root']:6.2f} "
            f"{figures['non_2xx'] + figures['socket_errors']:8d}"
        )
    routes = report["routes"]
    explained = routes["recommend with explain, random people"]["requests_per_second"]
    print(f"\nrecommend with explain: {explained / routes['recommend, random people']['requests_per_second']:.3f} x "
          "without (target: at least 0.9)")  # fmt: skip
    experimenting = routes["recommend, an experiment running"]["requests_per_second"]
    without = routes["recommend, random people"]["requests_per_second"]
    print(f"recommend with an experiment running: {experimenting / without:.3f} x without (target: at least 0.9)")
    warm = routes["recommend with 5 rated titles, random people"]
    cold_p99 = routes["recommend, random people"]["p99_ms"]
    print(f"recommend with 5 rated titles: {warm['ratio_to_get_root']:.3f} x GET / (target: at least 0.3), p99 "
          f"{warm['p99_ms'] / cold_p99:.2f} x the cold route's (target: under 3)")  # fmt: skip
    memory, model = report["memory"], report["model"]
    print(
        f"\nuwsgi workers' memory: {memory['pss_all_mib']:.0f} MiB PSS for {memory['workers']} together, "
        f"{memory['rss_one_mib']:.0f} MiB RSS for one ({memory['pss_all_mib'] / memory['rss_one_mib']:.2f} x)"
    )
    print(f"model: {model['size_mib']:.1f} MiB, loaded in {model['load_seconds_in_new_process']:.2f} s (new process)")
    print(f"machine: {report['machine']['cpus']} CPUs, {report['machine']['cpu_model']}, {report['machine']['date']}")


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    subprocess.run(["apt-get", "update", "-q"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument(
        "--balancer-image",
        metavar="IMAGE",
        help="also measure recommend through docker-compose.yml's balancer with 1 and 2 replicas of IMAGE",
    )
    args = parser.parse_args()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        work_dir = Path(scratch)
        subprocess.run([sys.executable, "-m", "app.train", "--out-dir", str(work_dir / "model")], cwd=ROOT, check=True)
        model_path = work_dir / "model" / "model.pkl"
        report = measure(model_path, work_dir, args.seconds)
        report["model"] = model_figures(model_path)
        report["the log at scale"] = log_at_scale.measure(model_path, work_dir)
    if args.balancer_image:
        for label, figures in through_balancer(args.balancer_image, args.seconds).items():
            figures["ratio_to_get_root"] = (
                figures["requests_per_second"] / report["routes"]["GET /"]["requests_per_second"]
            )
            figures["p99_ratio_to_get_root"] = figures["p99_ms"] / report["routes"]["GET /"]["p99_ms"]
            report["routes"][label] = figures
    report["machine"] = machine()
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
