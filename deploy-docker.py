#!/usr/bin/env python3
"""Build the image with a model and replace the running container, rolling back when the new one is not healthy.

deploy-docker.py IMAGE_NAME IMAGE_VERSION MODEL_FILE TEST_DATA_FILE SESSION_PASSWORD
  [--container-name NAME] [--port-mapping PORT] [--json-log] [--log-tag TAG]

SESSION_PASSWORD "-" reads it from a prompt (or standard input). The password reaches
the container through the environment, never through a command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
STAGING_PARENT = ".deploy-staging"
METADATA_FILE_NAME = "model.json"
HEALTH_POLL_SECONDS = 2.0


class DeployError(Exception):
    """The deployment stopped; the message says why and what state the containers are in."""


def docker(*arguments: str, check: bool = True, capture: bool = False, env: dict | None = None) -> str:
    result = subprocess.run(["docker", *arguments], capture_output=capture, text=True, env=env)
    if check and result.returncode != 0:
        raise DeployError(f"'docker {arguments[0]}' failed (exit {result.returncode}): {(result.stderr or '').strip()}")
    return (result.stdout or "").strip() if result.returncode == 0 else ""


def container_exists(name: str) -> bool:
    return subprocess.run(["docker", "container", "inspect", name], capture_output=True).returncode == 0


def stage_model(model_file: Path, test_data_file: Path, staging: Path) -> tuple[str, str]:
    """Copy the files into the build context; a .pkl travels with its model.json as a .tar.gz."""
    for path in (model_file, test_data_file):
        if not path.is_file():
            raise DeployError(f"{path} is not a file")
    metadata = model_file.with_name(METADATA_FILE_NAME)
    if model_file.suffix == ".pkl" and metadata.is_file():
        staged_model = staging / "model.tar.gz"
        with tarfile.open(staged_model, "w:gz") as archive:
            archive.add(model_file, arcname="model.pkl")
            archive.add(metadata, arcname=METADATA_FILE_NAME)
    else:
        staged_model = staging / model_file.name
        shutil.copyfile(model_file, staged_model)
    staged_test_data = staging / "test_data.json"
    shutil.copyfile(test_data_file, staged_test_data)
    return str(staged_model.relative_to(PROJECT_DIR)), str(staged_test_data.relative_to(PROJECT_DIR))


def build(image: str, model_file: Path, test_data_file: Path) -> None:
    (PROJECT_DIR / STAGING_PARENT).mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=PROJECT_DIR / STAGING_PARENT) as scratch:
        model_arg, test_arg = stage_model(model_file, test_data_file, Path(scratch))
        print(f"building {image} (the build runs the tests and the accuracy check)", flush=True)
        result = subprocess.run(
            ["docker", "build", "-t", image, "--build-arg", f"MODEL_FILE={model_arg}",
             "--build-arg", f"MODEL_TEST_FILE={test_arg}", str(PROJECT_DIR)]
        )  # fmt: skip
    if result.returncode != 0:
        raise DeployError(f"the build of {image} failed (tests or accuracy check: see above); nothing was replaced")


def run_container(args: argparse.Namespace, image: str, password: str) -> None:
    log_driver = "json-file" if args.json_log else "journald"
    command = [
        "run", "--detach", "--name", args.container_name,
        "--restart", "on-failure:5",
        "--log-driver", log_driver, "--log-opt", f"tag={args.log_tag or args.container_name}",
        "--publish", f"{args.port_mapping}:80",
        "--volume", f"{args.container_name}-data:/app/instance",
        "--env", "SESSION_PASSWORD",
    ]  # fmt: skip
    # Passed by name: docker reads the values from this process's environment, not from its arguments.
    for optional in ("JWT_SECRET_KEY", "DATABASE_URL", "LOG_LEVEL"):
        if os.environ.get(optional):
            command += ["--env", optional]
    docker(*command, image, env={**os.environ, "SESSION_PASSWORD": password})


def wait_until_healthy(name: str, timeout: float) -> str:
    """'healthy', or what the container was when it stopped being a candidate."""
    deadline = time.monotonic() + timeout
    while True:
        state = docker("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", name, capture=True)
        status, _, health = state.partition(" ")
        if health == "healthy" or health == "unhealthy" or status in ("exited", "dead"):
            return health if status == "running" else f"{status} ({health or 'no health'})"
        if time.monotonic() >= deadline:
            return f"still {health or status} after {timeout:.0f} s"
        time.sleep(HEALTH_POLL_SECONDS)


def replace(args: argparse.Namespace, image: str, password: str) -> None:
    name = args.container_name
    previous = f"{name}-previous"
    had_previous = container_exists(name)
    if had_previous:
        if container_exists(previous):
            docker("rm", "--force", previous)
        docker("rename", name, previous)
        docker("stop", previous)
    try:
        run_container(args, image, password)
        outcome = wait_until_healthy(name, args.health_timeout)
    except DeployError as error:
        outcome = str(error)
    if outcome == "healthy":
        if had_previous:
            docker("rm", previous)
        return
    if container_exists(name):
        docker("rm", "--force", name)
    if had_previous:
        docker("rename", previous, name)
        docker("start", name)
        raise DeployError(f"the new container was not healthy ({outcome}); the previous one is back and running")
    raise DeployError(f"the new container was not healthy ({outcome}); it was removed")


def read_password(given: str) -> str:
    if given != "-":
        return given
    if sys.stdin.isatty():
        return getpass.getpass("Session password: ")
    return sys.stdin.readline().rstrip("\n")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image_name", metavar="IMAGE_NAME")
    parser.add_argument("image_version", metavar="IMAGE_VERSION")
    parser.add_argument("model_file", metavar="MODEL_FILE", type=Path, help="model.pkl, or a .tar.gz holding one")
    parser.add_argument("test_data_file", metavar="TEST_DATA_FILE", type=Path, help="test_data.json")
    parser.add_argument("session_password", metavar="SESSION_PASSWORD", help="'-' to type it or pipe it in")
    parser.add_argument("--container-name", help="default: the image name")
    parser.add_argument("--port-mapping", type=int, default=80, help="host port for the container's 80 (default 80)")
    parser.add_argument("--json-log", action="store_true", help="json-file logs instead of journald")
    parser.add_argument("--log-tag", help="the logs' tag (default: the container name)")
    parser.add_argument("--health-timeout", type=float, default=120, help="seconds to wait for healthy (default 120)")
    args = parser.parse_args(argv)
    args.container_name = args.container_name or args.image_name.rsplit("/", 1)[-1]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    image = f"{args.image_name}:{args.image_version}"
    try:
        password = read_password(args.session_password)
        if not password:
            raise DeployError("the session password is empty")
        build(image, args.model_file, args.test_data_file)
        replace(args, image, password)
    except DeployError as error:
        print(f"deploy-docker: {error}", file=sys.stderr)
        return 1
    print(f"{args.container_name} runs {image} on port {args.port_mapping} and is healthy.")
    if args.json_log:
        print(f"Read its logs with: docker logs {args.container_name}")
    else:
        print(f"Read its logs with: journalctl CONTAINER_NAME={args.container_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
