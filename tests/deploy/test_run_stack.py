"""deploy/run-stack for real: nginx (Debian's) in front of uwsgi (PyPI's), on a loopback port."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from app.model.recommender import MODEL_FILE_NAME
from app.store.recommendation_log import recommendations, scores, sqlite_url
from tests.servers import ask, free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "stack password"
pytestmark = pytest.mark.stack


def stack_environ(model_path: Path, work_dir: Path, port: int, database_url: str | None = None) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if key not in ("SESSION_PASSWORD", "ML_MODEL_PATH")}
    return {
        **environ,
        # The uwsgi of this virtual environment, as the image has it on PATH.
        "PATH": f"{Path(sys.executable).parent}:{environ['PATH']}",
        "PORT": str(port),
        "ML_MODEL_PATH": str(model_path),
        "SESSION_PASSWORD": PASSWORD,
        "JWT_SECRET_KEY": "a-stack-test-signing-key-of-decent-length",
        "DATABASE_URL": database_url or sqlite_url(work_dir / "stack.sqlite3"),
        "RECOMMENDATION_JOURNAL_DIR": str(work_dir / "journal"),
        "EXPERIMENT_DIR": str(work_dir / "experiment"),
    }


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=90)


def group_is_gone(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def start_stack(
    model_path: Path, work_dir: Path, database_url: str | None = None, *, healthy_within: float = 60, **settings: str
) -> tuple[str, subprocess.Popen]:
    port = free_port()
    with (work_dir / "stack.log").open("a") as log:
        process = subprocess.Popen(
            [str(ROOT / "deploy" / "run-stack")],
            env={**stack_environ(model_path, work_dir, port, database_url), **settings},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, seconds=healthy_within)
    except AssertionError:  # a stack that did not come up is not left running
        kill_group(process)
        raise
    return url, process


def stack_processes(stack: subprocess.Popen, name: str) -> list[int]:
    """The stack's processes whose command line starts with name, as pgrep matches it ("nginx: worker")."""
    found = subprocess.run(["pgrep", "-g", str(stack.pid), "-f", f"^{name}"], capture_output=True, text=True)
    return sorted(int(pid) for pid in found.stdout.split())


def uwsgi_processes(stack: subprocess.Popen, role: str) -> list[int]:
    """The stack's uwsgi processes of a role ("master", "worker", "mule"), named by deploy/uwsgi.ini's auto-procname."""
    return stack_processes(stack, f"uWSGI {role}")


def kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def stack(synthetic_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    try:
        yield url, process
    finally:
        kill_group(process)


def test_the_stack_serves_the_api_through_nginx_and_stops_on_sigterm(stack: tuple[str, subprocess.Popen]) -> None:
    url, process = stack
    login = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5)
    assert login.headers["Server"] == "nginx"
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    answers = [
        requests.post(
            f"{url}/api/recommend", json={"age": age, "gender": "F", "occupation": "artist"}, headers=headers, timeout=5
        ).json()
        for age in range(20, 40)
    ]
    assert all(len(answer["recommendations"]) == 10 for answer in answers)
    # A fresh recommendation is scored once its worker's journal is copied: until then 503 with Retry-After.
    score = {"id": answers[0]["id"], "movie": answers[0]["recommendations"][0], "score": 4}
    with requests.Session() as session:
        scored, _, _ = ask(session, f"{url}/api/recommend/score", score, headers, retry_after=True)
    assert (scored.status_code, scored.json()) == (200, "Ok")

    metrics = requests.get(f"{url}/metrics", timeout=5).text
    # Counted across every worker.
    assert re.search(r'^recommendations_served_total{arm="none"} 20\.0$', metrics, re.MULTILINE), metrics
    assert re.search(r'^scores_recorded_total{arm="none"} 1\.0$', metrics, re.MULTILINE)
    assert 'http_requests_total{method="POST",route="/api/login",status="200"} 1.0' in metrics

    assert stop(process) == 0
    assert group_is_gone(process)


def test_the_workers_and_nginx_yield_the_cpu_to_the_mule_that_copies_the_journals(
    stack: tuple[str, subprocess.Popen],
) -> None:
    """app/worker_priority.py and nginx.conf's worker_priority: every thread of every uwsgi worker and nginx's
    worker run nicer than the mule and the master."""
    _, process = stack

    def niceness(pids: list[int]) -> set[int]:
        threads = [int(tid) for pid in pids for tid in os.listdir(f"/proc/{pid}/task")]
        return {os.getpriority(os.PRIO_PROCESS, tid) for tid in threads}

    (workers,) = niceness(uwsgi_processes(process, "worker"))
    (master,) = niceness(uwsgi_processes(process, "master"))
    nginx_workers = stack_processes(process, "nginx: worker")
    assert nginx_workers, "no nginx worker in the stack's process group"
    assert niceness(uwsgi_processes(process, "mule")) == {master} and workers > master
    assert niceness(nginx_workers) == {workers}


def test_the_preflight_that_uwsgi_runs_as_a_script_keeps_its_priority(tmp_path: Path) -> None:
    """deploy/run-stack runs deploy/preflight.py with `uwsgi --pyrun`, where worker_id() is 1 as in a worker."""
    script = tmp_path / "priority.py"
    script.write_text("import os, uwsgi\nfrom app.worker_priority import yield_to_the_mule\n"
                      "before = os.nice(0)\nyield_to_the_mule()\nprint('worker', uwsgi.worker_id(), 'niceness',"
                      " os.nice(0) - before, flush=True)\n")  # fmt: skip
    uwsgi = Path(sys.executable).parent / "uwsgi"
    result = subprocess.run([str(uwsgi), "--strict", "--pyrun", str(script)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    output = result.stdout + result.stderr  # uwsgi sends the script's output where its own log goes
    assert "worker 1 niceness 0\n" in output, output


def test_nginx_answers_its_own_errors_in_json(stack: tuple[str, subprocess.Popen]) -> None:
    url, _ = stack
    too_large = requests.post(
        f"{url}/api/login", data="x" * 40_000, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert too_large.status_code == 413
    assert too_large.json() == {"message": "the body is too large"}
    assert "nginx/" not in too_large.headers.get("Server", "")


def test_a_configuration_mistake_stops_the_stack_with_its_message(tmp_path: Path) -> None:
    environ = stack_environ(tmp_path / "missing.pkl", tmp_path, free_port())
    result = subprocess.run(
        [str(ROOT / "deploy" / "run-stack")], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "error: ML_MODEL_PATH: cannot read" in result.stderr


def test_answered_recommendations_survive_killing_every_uwsgi_process(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    try:
        login = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        answered = {
            requests.post(
                f"{url}/api/recommend",
                json={"age": age, "gender": "M", "occupation": "doctor"},
                headers=headers,
                timeout=5,
            ).json()["id"]
            for age in range(1, 121)
        }
        # Master, workers and mule at once, with no chance to flush anything.
        subprocess.run(["pkill", "-KILL", "-g", str(process.pid), "uwsgi"], check=True)
        process.wait(timeout=60)
    finally:
        kill_group(process)
    url, process = start_stack(synthetic_model_dir / MODEL_FILE_NAME, tmp_path)
    engine = create_engine(sqlite_url(tmp_path / "stack.sqlite3"))
    try:
        with engine.connect() as connection:
            stored = set(connection.execute(select(recommendations.c.id)).scalars())
        assert answered <= stored
        assert len(stored) == len(answered)
    finally:
        engine.dispose()
        kill_group(process)


def hammer(url: str, headers: dict, worker: int, stop: threading.Event, ledger: dict) -> None:
    """Recommend and score as fast as one client can, noting what was sent and what was answered 200."""
    session = requests.Session()
    turn = 0
    while not stop.is_set():
        turn += 1
        try:
            body = {"age": 1 + (worker * 7 + turn) % 120, "gender": "MFO"[turn % 3], "occupation": "writer"}
            answer = session.post(f"{url}/api/recommend", json=body, headers=headers, timeout=5)
            if answer.status_code != 200:
                continue
            ledger["recommendations"].add(answer.json()["id"])
            for rank, movie in enumerate(answer.json()["recommendations"][:2]):
                score = 1 + (worker + turn + rank) % 5
                ledger["sent"].add((answer.json()["id"], movie, float(score)))
                given = {"id": answer.json()["id"], "movie": movie, "score": score}
                reply = session.post(f"{url}/api/recommend/score", json=given, headers=headers, timeout=5)
                if reply.status_code == 200:
                    ledger["acknowledged"].add((answer.json()["id"], movie, float(score)))
        except requests.RequestException:
            return  # the stack is being killed


@pytest.mark.slow
def test_every_acknowledged_score_survives_killing_uwsgi_under_load(
    synthetic_model_dir: Path, tmp_path: Path, database_url: str
) -> None:
    model = synthetic_model_dir / MODEL_FILE_NAME
    url, process = start_stack(model, tmp_path, database_url)
    ledger = {"recommendations": set(), "sent": set(), "acknowledged": set()}
    stop_event = threading.Event()
    try:
        login = requests.post(f"{url}/api/login", json={"session_password": PASSWORD}, timeout=5)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        clients = [
            threading.Thread(target=hammer, args=(url, headers, worker, stop_event, ledger)) for worker in range(8)
        ]
        for client in clients:
            client.start()
        time.sleep(3)
        subprocess.run(["pkill", "-KILL", "-g", str(process.pid), "uwsgi"], check=True)
        stop_event.set()
        for client in clients:
            client.join(timeout=30)
        process.wait(timeout=60)
    finally:
        stop_event.set()
        kill_group(process)
    assert len(ledger["acknowledged"]) > 50, "the load did not get going"
    url, process = start_stack(model, tmp_path, database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            stored_scores = {
                (row.recommendation_id, row.movie, row.score) for row in connection.execute(select(scores))
            }
            stored_ids = set(connection.execute(select(recommendations.c.id)).scalars())
    finally:
        engine.dispose()
        kill_group(process)
    assert ledger["acknowledged"] <= stored_scores
    assert stored_scores <= ledger["sent"]
    assert ledger["recommendations"] <= stored_ids


@pytest.mark.repository
def test_the_image_health_check_passes_on_a_healthy_stack_and_fails_without_one(
    stack: tuple[str, subprocess.Popen],
) -> None:
    """The Dockerfile's HEALTHCHECK command, run here against run-stack on the port it is given."""
    url, process = stack
    port = url.rsplit(":", 1)[1]
    assert run_image_health_check(port).returncode == 0
    stop(process)
    assert run_image_health_check(port).returncode != 0


def run_image_health_check(port: str | int) -> subprocess.CompletedProcess:
    healthcheck = re.search(r"^HEALTHCHECK .* CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.MULTILINE).group(1)
    command = [sys.executable if part == "python" else part for part in json.loads(healthcheck)]
    return subprocess.run(command, env={**os.environ, "PORT": str(port)}, cwd=ROOT, capture_output=True)


@pytest.mark.repository
@pytest.mark.parametrize(
    ("status", "report", "healthy"),
    [
        (503, {"status": "unavailable", "model": "ok", "database": "unavailable"}, True),
        (503, {"status": "unavailable", "model": "unavailable", "database": "ok"}, False),
        (502, {"message": "the service is not available; try again shortly"}, False),
    ],
)
def test_the_image_health_check_counts_the_model_not_a_database_that_is_away(
    status: int, report: dict, healthy: bool
) -> None:
    """Swarm replaces unhealthy tasks: a database that is away must not make every API task be replaced."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(report).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert (run_image_health_check(server.server_address[1]).returncode == 0) is healthy
        finally:
            server.shutdown()


def test_a_stop_while_a_worker_still_loads_the_app_is_clean(synthetic_model_dir: Path, tmp_path: Path) -> None:
    """A stop signal that reaches a worker still loading the app (lazy-apps) is lost by uwsgi; the worker's
    mercy (uwsgi.ini) ends it within seconds instead of run-stack killing uwsgi after its grace."""
    (tmp_path / "slow_main.py").write_text(
        "import time\nimport uwsgi\nfrom main import app\nif uwsgi.worker_id() == 2:\n    time.sleep(60)\n"
    )
    _, process = start_stack(
        synthetic_model_dir / MODEL_FILE_NAME, tmp_path, APP_MODULE="slow_main", PYTHONPATH=str(tmp_path)
    )
    try:
        started = time.monotonic()
        assert stop(process) == 0, (tmp_path / "stack.log").read_text()[-2000:]
        assert time.monotonic() - started < 20
    finally:
        kill_group(process)


def test_an_ordinary_user_can_run_the_stack(synthetic_model_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test switches to the user nobody: run it as root (CI does)")
    work_dir = Path(tempfile.mkdtemp(prefix="run-stack-nobody-"))
    work_dir.chmod(0o777)
    shutil.copy(synthetic_model_dir / MODEL_FILE_NAME, work_dir / MODEL_FILE_NAME)
    port = free_port()
    environ = stack_environ(work_dir / MODEL_FILE_NAME, work_dir, port)
    try:
        with (work_dir / "stack.log").open("w") as log:
            process = subprocess.Popen(
                ["runuser", "-u", "nobody", "--", str(ROOT / "deploy" / "run-stack")],
                env=environ, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process, seconds=60)
            # The signal goes to run-stack itself, under runuser.
            found = subprocess.run(["pgrep", "-u", "nobody", "-g", str(process.pid), "-f", "deploy/run-stack"],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            os.kill(int(found.stdout.split()[0]), signal.SIGTERM)
            assert process.wait(timeout=90) == 0, (work_dir / "stack.log").read_text()[-2000:]
        finally:
            kill_group(process)
    finally:
        shutil.rmtree(work_dir)


def test_nginx_answers_in_json_when_uwsgi_is_not_there(tmp_path: Path) -> None:
    """deploy/nginx.conf.template alone, with no uwsgi behind its socket: its own 502 and 413 are JSON too,
    with the app's protective headers."""
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf.template").read_text()
    conf = conf.replace("${PORT}", str(port)).replace("${RUNTIME_DIR}", str(tmp_path))
    conf = conf.replace("${DEPLOY_DIR}", str(ROOT / "deploy"))
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        too_large = requests.post(f"http://127.0.0.1:{port}/api/login", data=b"x" * 17 * 1024, timeout=2)
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
    assert answer.status_code == 502
    assert answer.json() == {"message": "the service is not available; try again shortly"}
    assert answer.headers["Server"] == "nginx"
    assert too_large.status_code == 413
    assert too_large.json() == {"message": "the body is too large"}
    for own_answer in (answer, too_large):
        assert own_answer.headers["Content-Type"] == "application/json"
        assert own_answer.headers["X-Content-Type-Options"] == "nosniff"
        assert own_answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_healthy_start_and_stop_write_nothing_to_standard_error(synthetic_model_dir: Path, tmp_path: Path) -> None:
    """A log collector takes standard error as errors (docker's journald driver: priority 3): uwsgi's banner
    and the app's lines go to standard output, the app's lines with their level."""
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / "deploy" / "run-stack")],
        env=stack_environ(synthetic_model_dir / MODEL_FILE_NAME, tmp_path, port),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, seconds=60)
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=90)
    finally:
        kill_group(process)
    assert process.returncode == 0, errors + output[-3000:]
    assert errors == ""
    assert "Starting uWSGI" in output
    assert re.search(r"^\d{4}-\d\d-\d\d \S+ INFO app\.requests \[\w+\] GET /health 200", output, re.MULTILINE)
