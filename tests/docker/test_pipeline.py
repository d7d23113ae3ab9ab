"""bitbucket-pipelines.yml run on the local engine by deploy/pipeline, as Bitbucket runs it: a small pipeline that
shows what the runner does between lines and steps, and the real file with one line broken. The main branch's
pipeline whole (Test, Build, and the Deploy over SSH) is `make pipeline`'s; no test here runs it yet."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker.conftest import ROOT, docker

pytestmark = pytest.mark.docker
# The small pipelines here take seconds; a run that hangs is ended (and its containers removed by the runner).
PIPELINE_TIMEOUT_SECONDS = 600
HELPER_IMAGES = ("pipeline-docker-service",)


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
