"""The image on the real engine: what it holds, who runs it, and the README's walkthrough against it."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import PASSWORD, deploy_docker, docker, export_tree, readme_block, wait_for_health
from tests.servers import free_port

pytestmark = pytest.mark.docker
# The image's owner, app (Dockerfile: useradd --uid 10001).
APP_UID = "10001"
# At most this much over its python:3.11-slim base (the runtime and its own tests; no development tools, no wheels).
MAX_BYTES_OVER_BASE = 350_000_000


@pytest.fixture
def served(image: str, container_name: str) -> Iterator[tuple[str, str]]:
    """(base URL, container name) of the image running as the README's `docker run` line has it."""
    port = free_port()
    docker("run", "--detach", "--name", container_name, "--publish", f"127.0.0.1:{port}:8080",
           "--env", f"SESSION_PASSWORD={PASSWORD}", image)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url)
    yield url, container_name


def test_the_readme_walkthrough_runs_against_the_container(served: tuple[str, str]) -> None:
    url, _ = served
    walkthrough = readme_block("TOKEN=$(curl")  # the shell block that logs in, recommends and scores
    script = walkthrough.replace("http://127.0.0.1:5000", url).replace('"letmein"', json.dumps(PASSWORD))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer, scored = result.stdout.splitlines()
    assert len(json.loads(answer)["recommendations"]) == 3
    assert scored == '"Ok"'


def test_no_process_in_the_container_runs_as_root(served: tuple[str, str]) -> None:
    _, name = served
    processes = docker("top", name, "-eo", "pid,uid,args").splitlines()[1:]
    assert {line.split()[1] for line in processes} == {APP_UID}, processes
    commands = " ".join(processes)
    assert "nginx: master process" in commands and "uWSGI worker" in commands


def test_a_new_container_is_marked_healthy_within_seconds_of_serving(served: tuple[str, str]) -> None:
    _, name = served
    deadline = time.monotonic() + 10
    while docker("inspect", "--format", "{{.State.Health.Status}}", name) != "healthy":
        assert time.monotonic() < deadline, "not healthy 10 s after it served /health"
        time.sleep(0.2)


def test_nothing_the_build_wrote_stays_in_the_image(image: str) -> None:
    listing = docker("run", "--rm", image, "sh", "-c",
                     "find /app/instance -mindepth 1; find / -xdev \\( -name .hypothesis -o -name .schemathesis "
                     "-o -name .pytest_cache -o -name __pycache__ \\) -path '/app/*' -print; "
                     "ls /opt/venv/bin")  # fmt: skip
    assert "/app/" not in listing, listing
    # The image's own test runner is there (SPEC 8: docker exec <container> pytest); no other tool is.
    for tool in ("ruff", "schemathesis", "st", "playwright", "hadolint", "matplotlib"):
        assert tool not in listing.split(), f"{tool} is in the final image"
    assert {"uwsgi", "pytest"} <= set(listing.split())


def test_a_running_container_passes_the_same_tests_as_its_build(served: tuple[str, str]) -> None:
    """SPEC 8: `docker exec <container> pytest` is the build's selection, run as app beside the live service,
    which it leaves alone."""
    _, name = served
    assert docker("exec", name, "id", "-u") == APP_UID
    build_report = docker("exec", name, "cat", "/model/build-check.txt")
    # What the tests may not touch. The live workers' reports of what they serve come and go on their own, and so
    # do SQLite's -wal and -shm files with the live connections; a file deleted and made again moves in find's order.
    instance = ("exec", name, "find", "/app/instance", "-not", "-path", "/app/instance/experiment/workers*",
                "-not", "-name", "*-wal", "-not", "-name", "*-shm")  # fmt: skip
    instance_before = sorted(docker(*instance).splitlines())
    result = subprocess.run(["docker", "exec", name, "pytest"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
    # "300 passed, 61 deselected": the same counts as the build's (pytest -q) summary line.
    (counts,) = re.findall(r"^=+ (\d+ passed.*?) in [\d.]+s", result.stdout, re.MULTILINE)
    assert re.search(rf"^{re.escape(counts)} in ", build_report, re.MULTILINE), (counts, build_report)
    assert sorted(docker(*instance).splitlines()) == instance_before


def test_a_running_container_passes_the_accuracy_check_again(served: tuple[str, str]) -> None:
    _, name = served
    result = subprocess.run(
        ["docker", "exec", name, "python", "tests/run_accuracy_tests.py", "/model/model.pkl", "/model/test_data.json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accuracy check passed" in result.stdout and "ranking gate passed" in result.stdout


def test_the_image_records_the_checks_its_build_passed(image: str) -> None:
    report = docker("run", "--rm", image, "cat", "/model/build-check.txt")
    assert re.search(r"\d+ passed", report), report
    assert not re.search(r"\d+ (failed|errors?)\b", report), report


def test_the_image_is_at_most_350_mb_over_its_base(image: str) -> None:
    size = int(docker("image", "inspect", "--format", "{{.Size}}", image))
    base = int(docker("image", "inspect", "--format", "{{.Size}}", "python:3.11-slim"))
    assert size - base <= MAX_BYTES_OVER_BASE, f"{(size - base) / 1e6:.0f} MB over the base"


def test_a_build_whose_tests_fail_fails(image: str, model_files: tuple[Path, Path], tmp_path: Path) -> None:
    """The test stage is part of the build: a test module that cannot even load stops it."""
    export_tree(tmp_path)
    (tmp_path / "tests" / "test_broken_on_purpose.py").write_text('raise RuntimeError("broken on purpose")\n')
    with deploy_docker.staged_model(*model_files, tmp_path) as (model_arg, test_arg):
        result = subprocess.run(
            ["docker", "build", "--force-rm", "--build-arg", f"MODEL_FILE={model_arg}",
             "--build-arg", f"MODEL_TEST_FILE={test_arg}", str(tmp_path)],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
    assert result.returncode != 0
    assert "broken on purpose" in result.stdout + result.stderr


def test_the_signing_key_made_at_the_first_start_is_readable_by_app_alone(served: tuple[str, str]) -> None:
    _, name = served
    assert docker("exec", name, "stat", "--format", "%a %u", "/app/instance/jwt-secret-key") == f"600 {APP_UID}"
