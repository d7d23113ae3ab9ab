"""bitbucket-pipelines.yml run on the local engine by deploy/pipeline, as Bitbucket runs it: a small pipeline that
shows what the runner does between lines and steps, the real file with one line broken, and the real Deploy step
over SSH to a rehearsal server (deploy/stand-ins/deploy-server) in a container of the local engine. The Test and
Build steps whole are `make pipeline`'s; no test here runs them yet."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.docker.conftest import ROOT, docker, wait_for_health
from tests.servers import free_port

pytestmark = pytest.mark.docker
# The small pipelines here take seconds, the Deploy step minutes (its build runs the suite inside the image); a run
# that hangs is ended (and its containers removed by the runner).
PIPELINE_TIMEOUT_SECONDS = 1200
DEPLOY_SERVER_IMAGE = "pipeline-deploy-server"
HELPER_IMAGES = ("pipeline-docker-service", DEPLOY_SERVER_IMAGE)


def commit_tree(
    source: Path, destination: Path, edit: dict[str, str] | None = None, add: dict[str, Path] | None = None
) -> None:
    """A repository at destination holding source's HEAD, with the files edit gives written anew and the files add
    names copied in (ignored or not), committed: the runner runs a commit, as Bitbucket does."""
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(source), str(destination)], check=True)
    subprocess.run(["git", "-C", str(destination), "checkout", "--quiet", "--detach", git_head(source)], check=True)
    for name, text in (edit or {}).items():
        (destination / name).write_text(text)
    for name, origin in (add or {}).items():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, destination / name)
    subprocess.run(["git", "-C", str(destination), "add", "--all", "--force"], check=True)
    identity = ["-c", "user.name=pipeline test", "-c", "user.email=pipeline@test.invalid"]
    subprocess.run(["git", "-C", str(destination), *identity, "commit", "--quiet", "--allow-empty", "-m", "edit"],
                   check=True)  # fmt: skip


def git_head(source: Path) -> str:
    return subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def run_pipeline(source: Path, *arguments: str, **variables: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **variables}
    command = [sys.executable, "-m", "deploy.pipeline", "--source", str(source), *arguments]
    command += [argument for name in variables for argument in ("--variable", name)]
    with subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=PIPELINE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.terminate()  # on SIGTERM the runner removes the step's containers
            stdout, stderr = process.communicate()
            pytest.fail(f"no end within {PIPELINE_TIMEOUT_SECONDS} s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    print(stdout[-3000:], stderr[-3000:], sep="\n", file=sys.stderr)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def leftover_containers() -> str:
    return docker("ps", "--all", "--format", "{{.Names}}", "--filter", "name=^pipeline-")


@pytest.fixture(scope="module", autouse=True)
def helper_images(docker_engine: None) -> Iterator[None]:
    """The images the runner and the SSH rehearsal make go with the module."""
    yield
    for image in HELPER_IMAGES:
        docker("rmi", image, check=False)


SMALL_PIPELINE = """\
image: python:3.11
definitions:
  services:
    redis:
      image: redis:7.0
pipelines:
  default:
    - step:
        name: Write
        services:
          - redis
        script:
          - mkdir -p model/sub && echo carried > model/sub/file.txt && echo not carried > other.txt
          - python3 -c "import socket; socket.create_connection(('localhost', 6379)); print('redis on localhost')"
        artifacts:
          - model/**
    - step:
        name: Read
        script:
          - cat model/sub/file.txt && test ! -e other.txt
          - export SEEN=2
          - echo "seen $SEEN at $BITBUCKET_COMMIT in $BITBUCKET_CLONE_DIR"
          - test "$SEEN" = 3
          - echo this line never runs
    - step:
        name: Never
        script:
          - echo this step never runs
"""
ECHO_LINE = 'echo "seen $SEEN at $BITBUCKET_COMMIT in $BITBUCKET_CLONE_DIR"'


def test_lines_share_a_shell_artifacts_reach_the_next_step_and_the_first_failure_ends_the_run(tmp_path: Path) -> None:
    commit_tree(ROOT, tmp_path / "repository", {"bitbucket-pipelines.yml": SMALL_PIPELINE})
    result = run_pipeline(tmp_path / "repository")
    assert result.returncode == 1
    assert "redis on localhost" in result.stdout  # the service shares the step's network namespace
    commit = git_head(tmp_path / "repository")
    # Each line echoed, then run; an export carries to the next line; the artifact came, the other file did not.
    assert f"+ export SEEN=2\n+ {ECHO_LINE}\nseen 2 at {commit} in /opt/atlassian/pipelines/agent/build\n" in (
        result.stdout
    )
    assert "+ cat model/sub/file.txt && test ! -e other.txt\ncarried\n" in result.stdout
    assert "never runs" not in result.stdout
    assert "step 3" not in result.stdout
    assert result.stderr.splitlines()[-1] == "pipeline: step 2 'Read' failed at line 4: test \"$SEEN\" = 3"
    assert leftover_containers() == ""


def test_a_broken_line_of_the_real_file_stops_the_run_at_its_step_with_its_output(tmp_path: Path) -> None:
    text = (ROOT / "bitbucket-pipelines.yml").read_text()
    broken = text.replace("apt-get update && apt-get install -y --no-install-recommends nginx ",
                          "apt-get install -y --no-install-recommends no-such-package nginx ")  # fmt: skip
    assert broken != text
    commit_tree(ROOT, tmp_path / "repository", {"bitbucket-pipelines.yml": broken})
    result = run_pipeline(tmp_path / "repository")
    assert result.returncode == 1
    assert "Unable to locate package no-such-package" in result.stdout + result.stderr  # the step's own output
    assert "+ mkdir -p /run/systemd/journal" not in result.stdout  # the next line never ran
    assert "step 2" not in result.stdout
    assert result.stderr.splitlines()[-1].startswith("pipeline: step 1 'Test' failed at line 1: apt-get install")
    assert leftover_containers() == ""


@pytest.fixture
def deploy_server(tmp_path: Path) -> Iterator[dict[str, Path | str]]:
    """Debian's OpenSSH server in a container, where `deploy` logs in with a throwaway key and reaches the local
    engine (its socket mounted): what DOCKER_HOST=ssh://deploy@ADDRESS needs. The key, the server's known-hosts
    line, and its address."""
    docker("build", "--quiet", "-t", DEPLOY_SERVER_IMAGE, str(ROOT / "deploy" / "stand-ins" / "deploy-server"),
           timeout=600)  # fmt: skip
    deploy_key = tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(deploy_key)], check=True)
    name = f"pipeline-deploy-server-{uuid.uuid4().hex[:8]}"
    try:
        docker("run", "--detach", "--name", name, "--volume", "/var/run/docker.sock:/var/run/docker.sock",
               "--volume", f"{shutil.which('docker')}:/usr/local/bin/docker:ro",
               "--volume", f"{deploy_key}.pub:/home/deploy/.ssh/authorized_keys:ro", DEPLOY_SERVER_IMAGE)  # fmt: skip
        address = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name)
        assert address, "the rehearsal server has no address on the default bridge network"
        known_hosts = tmp_path / "known_hosts"
        deadline = time.monotonic() + 30
        while not (scan := subprocess.run(["ssh-keyscan", "-T", "2", address], capture_output=True, text=True)).stdout:
            assert time.monotonic() < deadline, "the rehearsal server's sshd never answered"
            time.sleep(0.5)
        known_hosts.write_text(scan.stdout)
        yield {"key": deploy_key, "known_hosts": known_hosts, "address": address}
    finally:
        docker("rm", "--force", name, check=False)


def only_the_deploy_step(text: str) -> str:
    """The real file, its pipelines replaced by one that runs its Deploy step alone, started at once (Bitbucket
    refuses a manual step as a pipeline's first)."""
    head, found, _ = text.partition("\npipelines:\n")
    assert found, "bitbucket-pipelines.yml has no top-level `pipelines:`"
    return head + "\npipelines:\n  default:\n    - step:\n        <<: *deploy\n        trigger: automatic\n"


@pytest.fixture
def deploy_repository(tmp_path: Path, model_files: tuple[Path, Path]) -> Iterator[Path]:
    """A commit whose file runs the Deploy step alone, with the Test step's artifacts (here the synthetic model and
    its model.json, committed in their place). The image the step tags goes after the test; a test that asks for
    this fixture before container_name has its containers removed first, so the image is no longer in use."""
    model_file, test_data_file = model_files
    repository = tmp_path / "repository"
    text = (ROOT / "bitbucket-pipelines.yml").read_text()
    commit_tree(ROOT, repository, {"bitbucket-pipelines.yml": only_the_deploy_step(text)},
                {"model/model.pkl": model_file, "model/model.json": model_file.with_name("model.json"),
                 "model/test_data.json": test_data_file})  # fmt: skip
    yield repository
    docker("rmi", f"recommender:{git_head(repository)}", check=False)


def test_the_deploy_step_deploys_over_ssh_and_the_container_serves(
    deploy_server: dict, image: str, deploy_repository: Path, container_name: str
) -> None:
    """The real Deploy step, its script as written: DOCKER_HOST=ssh://deploy@SERVER, deploy-docker.py with the
    Test step's artifacts, the password on standard input (that it reaches the container by name only is
    tests/docker/test_deploy_docker.py's). The session's image was built from the same files, staged the same way,
    so this build comes from its cache (30-33 s), when the tree is clean: that image holds the working tree, the
    step's clone the commit, and a change to a file the image copies makes the build run whole (about 5 min)."""
    port = free_port()
    password = f"pipeline {uuid.uuid4().hex}"
    variables = {"DEPLOY_USER": "deploy", "DEPLOY_SERVER": deploy_server["address"], "SESSION_PASSWORD": password,
                 "DEPLOY_CONTAINER": container_name, "DEPLOY_PORT": str(port)}  # fmt: skip
    ssh = ["--ssh-key", str(deploy_server["key"]), "--known-hosts", str(deploy_server["known_hosts"])]
    result = run_pipeline(deploy_repository, *ssh, **variables)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^pipeline: passed; 'Deploy' \d+ s$", result.stdout, re.MULTILINE), result.stdout[-2000:]
    assert password not in result.stdout + result.stderr  # echoed lines show the variable, not its value
    url = f"http://127.0.0.1:{port}"
    wait_for_health(url)
    login = requests.post(f"{url}/api/login", json={"session_password": password}, timeout=10)
    assert login.status_code == 200, login.text
    command = docker("inspect", "--format", "{{json .Path}} {{json .Args}} {{json .Config.Cmd}}", container_name)
    assert password not in command
    assert f"SESSION_PASSWORD={password}" in docker("inspect", "--format", "{{json .Config.Env}}", container_name)
