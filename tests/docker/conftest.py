"""The real Docker engine (Debian's docker.io, dockerd as root), the base images, and the image built once.

These tests fail, never skip, when no engine answers: `make test` starts one (tests/start-services).
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "docker test password"
# The test image's repository; each test run tags its own version.
IMAGE_NAME = "recommender-test"


deploy_docker = load_script("deploy-docker.py", "deploy_docker")


def docker(*arguments: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *arguments], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"docker {' '.join(arguments)}: {result.stderr}"
    return result.stdout.strip()


def readme_block(first_line: str) -> str:
    """The README's shell block that starts with first_line."""
    blocks = re.findall(r"```\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    (block,) = [block for block in blocks if block.startswith(first_line)]
    return block


def make_compose_secrets(directory: Path, session_password: str) -> Path:
    """docker-compose.yml's secret files, made in directory by the README's own lines (those before
    `docker-compose up`) with session_password; returns the folder to give compose as SECRETS_DIR."""
    lines = readme_block("mkdir -m 700 secrets").splitlines()
    setup = lines[: next(number for number, line in enumerate(lines) if line.startswith("docker-compose "))]
    script = "\n".join(setup).replace("letmein", shlex.quote(session_password))
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=directory, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return directory / "secrets"


def compose_command() -> list[str]:
    """Docker Compose v2 where the engine has it, else Debian's docker-compose 1.29."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    assert shutil.which("docker-compose"), "neither `docker compose` nor docker-compose: apt-get install docker-compose"
    return ["docker-compose"]


def wait_until(condition: Callable[[], object], seconds: float = 20, what: str = "the condition") -> float:
    """Seconds until condition() is true; fails saying what did not happen."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what}: not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


def wait_for_health(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url}/health did not answer 200 within {seconds} s")


def export_tree(destination: Path) -> None:
    """The files git has (the working tree's version of tracked files, new files once added): git archive of
    the stash commit that holds them, or of HEAD when nothing changed. Ignored local state stays out."""
    commit = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True, check=True)
    archive = subprocess.run(["git", "archive", commit.stdout.strip() or "HEAD"], cwd=ROOT, capture_output=True,
                             check=True)  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers, and every base image the project's files name."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers: run `make test` as root (it starts dockerd), or start dockerd")
    result = subprocess.run([str(ROOT / "deploy" / "base-images")], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def model_files(synthetic_model_dir: Path) -> tuple[Path, Path]:
    return synthetic_model_dir / "model.pkl", synthetic_model_dir / "test_data.json"


@pytest.fixture(scope="session")
def image(
    docker_engine: None, model_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The image built from a clean export of the tree, with the model staged as deploy-docker.py stages it
    (so that its deploys of the same model build from this build's cache)."""
    context = tmp_path_factory.mktemp("image-context")
    export_tree(context)
    tag = f"{IMAGE_NAME}:{uuid.uuid4().hex[:8]}"
    log = tmp_path_factory.getbasetemp() / "image-build.log"
    with deploy_docker.staged_model(*model_files, context) as (model_arg, test_arg), log.open("w") as output:
        started = time.monotonic()
        result = subprocess.run(
            ["docker", "build", "-t", tag, "--build-arg", f"MODEL_FILE={model_arg}",
             "--build-arg", f"MODEL_TEST_FILE={test_arg}", str(context)],
            stdout=output, stderr=subprocess.STDOUT, timeout=1800,
        )  # fmt: skip
    print(f"built {tag} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert result.returncode == 0, log.read_text()[-5000:]
    yield tag
    docker("rmi", tag, check=False)


def remove_containers(name: str) -> None:
    """The containers deploy-docker.py makes under a name, with their volumes: the anonymous one the
    image's VOLUME gives each container, and NAME-data."""
    for suffix in ("", "-previous", "-candidate"):
        docker("rm", "--force", "--volumes", name + suffix, check=False)
    docker("volume", "rm", f"{name}-data", check=False)


@pytest.fixture
def container_name() -> Iterator[str]:
    """A name for the test's containers; they and their volumes are removed afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    remove_containers(name)
