"""bitbucket-pipelines.yml run on the local engine by deploy/pipeline, as Bitbucket runs it: a small pipeline that
shows what the runner does between lines and steps, the real file with one line broken, and the main branch's
pipeline whole (the default pipeline's Test and Build steps, then the manual Deploy over SSH to a server in a
container on the same engine, which then serves)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.docker.conftest import PASSWORD, ROOT, docker, remove_containers, wait_for_health
from tests.servers import free_port

pytestmark = pytest.mark.docker
# The Test step's selection of the suite here (the whole suite runs in `make pipeline`): the store on the
# PostgreSQL service, the login limit on the Redis service, the page in the Chromium the step installs, and
# the data set the step's `make data` copied.
TEST_SELECTION = (
    "-p no:cacheprovider tests/store/test_recommendation_log.py"
    " tests/web/api/test_auth.py::test_servers_sharing_redis_share_the_login_limit"
    " tests/ui/test_page.py::test_a_wrong_password_shows_an_error"
    " tests/model/test_data.py::test_fetch_takes_a_local_zip_or_directory"
)
# The main branch's pipeline took 25 min for its Test step alone with the load average at 30 on 2 cores.
PIPELINE_TIMEOUT_SECONDS = 3600
DEPLOY_SERVER_IMAGE = "pipeline-deploy-server"
HELPER_IMAGES = (DEPLOY_SERVER_IMAGE, "pipeline-docker-service")


def commit_tree(source: Path, destination: Path, edit: dict[str, str] | None = None) -> None:
    """A repository at destination holding source's HEAD, with bitbucket-pipelines.yml replaced when edit gives
    it anew, committed: the runner runs a commit, as Bitbucket does."""
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(source), str(destination)], check=True)
    subprocess.run(["git", "-C", str(destination), "checkout", "--quiet", "--detach", git_head(source)], check=True)
    for name, text in (edit or {}).items():
        (destination / name).write_text(text)
    identity = ["-c", "user.name=pipeline test", "-c", "user.email=pipeline@test.invalid"]
    subprocess.run(["git", "-C", str(destination), *identity, "commit", "--quiet", "--allow-empty", "-am", "edit"],
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


@dataclass
class DeployServer:
    name: str
    address: str
    key: Path
    known_hosts: Path


@pytest.fixture
def deploy_server(tmp_path: Path) -> Iterator[DeployServer]:
    """An SSH server in a container of the local engine, reaching that engine, with a throwaway key (made by
    the server image's own ssh-keygen, so that the host needs no SSH client)."""
    docker("build", "--quiet", "-t", DEPLOY_SERVER_IMAGE, str(ROOT / "deploy" / "stand-ins" / "deploy-server"),
           timeout=600)  # fmt: skip
    keys = tmp_path / "keys"
    keys.mkdir()
    docker("run", "--rm", "--volume", f"{keys}:/keys", "--entrypoint", "ssh-keygen", DEPLOY_SERVER_IMAGE,
           "-q", "-t", "ed25519", "-N", "", "-C", "pipeline rehearsal", "-f", "/keys/id_rsa")  # fmt: skip
    name = f"pipeline-deploy-server-{uuid.uuid4().hex[:8]}"
    docker("run", "--detach", "--name", name, "--volume", f"{keys / 'id_rsa.pub'}:/home/deploy/.ssh/authorized_keys:ro",
           "--volume", "/var/run/docker.sock:/var/run/docker.sock",
           "--volume", f"{shutil.which('docker')}:/usr/local/bin/docker:ro", DEPLOY_SERVER_IMAGE)  # fmt: skip
    try:
        address = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name)
        host_key = docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        (keys / "known_hosts").write_text(f"{address} {' '.join(host_key)}\n")
        yield DeployServer(name, address, keys / "id_rsa", keys / "known_hosts")
    finally:
        docker("rm", "--force", name, check=False)


def test_the_main_branch_tests_builds_and_deploys_over_ssh_and_the_container_serves(
    deploy_server: DeployServer,
) -> None:
    """Its first two steps are the default pipeline's (tests/test_container_files.py checks that they are the
    same steps); the third, started by hand in Bitbucket, deploys through DOCKER_HOST=ssh://... ."""
    commit, container, port = git_head(ROOT), f"pipeline-deployed-{uuid.uuid4().hex[:8]}", free_port()
    try:
        result = run_pipeline(
            ROOT, "--pipeline", "branches:main", "--manual",
            "--ssh-key", str(deploy_server.key), "--known-hosts", str(deploy_server.known_hosts),
            PYTEST_ADDOPTS=TEST_SELECTION, DEPLOY_USER="deploy", DEPLOY_SERVER=deploy_server.address,
            SESSION_PASSWORD=PASSWORD, DEPLOY_CONTAINER=container, DEPLOY_PORT=str(port),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        test_output = result.stdout.split("pipeline: step 2 ")[0]
        (summary,) = re.findall(r"^=+ (.*) in [\d.]+s", test_output, re.MULTILINE)[-1:]
        assert re.fullmatch(r"\d+ passed, \d+ deselected", summary), summary  # nothing skipped, nothing failed
        assert f"Successfully tagged recommender:{commit}" in result.stdout  # the Build step, through the proxy
        assert "Accepted publickey for deploy" in docker("logs", deploy_server.name)
        wait_for_health(f"http://127.0.0.1:{port}", seconds=30)
        login = requests.post(f"http://127.0.0.1:{port}/api/login", json={"session_password": PASSWORD}, timeout=5)
        assert login.status_code == 200
        assert docker("inspect", "--format", "{{.Config.Image}}", container) == f"recommender:{commit}"
        assert PASSWORD not in result.stdout + result.stderr
        assert set(leftover_containers().split()) == {container, deploy_server.name}
    finally:
        remove_containers(container)
        docker("rmi", f"recommender:{commit}", check=False)
