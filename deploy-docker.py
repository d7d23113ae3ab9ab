#!/usr/bin/env python3
"""Build the image with a model and put it in place of the running container, never losing the last good one.

deploy-docker.py IMAGE_NAME IMAGE_VERSION MODEL_FILE TEST_DATA_FILE SESSION_PASSWORD
  [--container-name NAME] [--port-mapping PORT] [--json-log] [--log-tag TAG] [--health-timeout SECONDS]

1. Build IMAGE_NAME:IMAGE_VERSION; the build runs the tests and the accuracy check. The model is staged
   byte for byte the same for the same files, so unchanged code and model build from the cache.
2. Try the new version in a container of its own (NAME-candidate: no port, no volume) until it is healthy.
3. Swap: the new container is created under NAME, the running one is renamed NAME-previous and stopped,
   the new one starts; once it is healthy the previous one is removed. Only the swap is downtime.
A failure or a signal (SIGINT, SIGTERM) at any point leaves exactly one container under NAME: the new one
if it was already found healthy, else the previous one, running; the candidate and NAME-previous go. A docker
command is never cut short (a signal waits for it to end, a stop of the previous version included); only the
build and the waits for health are interrupted at once. Once the recovery begins, further signals are ignored.
A run killed outright (SIGKILL) is mended the same way by the next run, before it builds.

SESSION_PASSWORD "-" reads it from a prompt (or standard input). The password and the service's settings
(JWT_SECRET_KEY, DATABASE_URL, LOG_LEVEL, ...) reach the container through the environment, by name.

Exit status, each printed with what runs now: 0 deployed; 1 the build failed; 2 bad arguments or files;
3 the new version was not healthy; 4 interrupted; 5 a docker command failed; 6 the previous version could
not be put back (the message says what to do). The last line says which version runs: "not deployed; ..."
or, when a signal came after the new version was found healthy, "deployed all the same; ...".
"""

from __future__ import annotations

import argparse
import getpass
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
STAGING_PARENT = ".deploy-staging"
METADATA_FILE_NAME = "model.json"
# The port nginx listens on inside the image (its PORT).
CONTAINER_PORT = 8080
HEALTH_POLL_SECONDS = 0.5
STOP_SECONDS = 35
LOG_LINES_SHOWN = 10
# The service's settings (README, "Configuration") that pass from this environment to the container.
SERVICE_SETTINGS = (
    "JWT_SECRET_KEY",
    "JWT_ACCESS_TOKEN_EXPIRES",
    "DATABASE_URL",
    "LOG_LEVEL",
    "LOGIN_RATE_LIMIT",
    "RATELIMIT_STORAGE_URI",
    "TRUSTED_PROXY_HOPS",
)

DEPLOYED, BUILD_FAILED, BAD_INPUT, UNHEALTHY, INTERRUPTED, DOCKER_FAILED, NOT_RESTORED = range(7)


class DeployError(Exception):
    """The deployment stopped; exit_status says how, the message why."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class Interrupted(DeployError):
    def __init__(self, signal_number: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signal_number).name}", INTERRUPTED)


SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM are held until the block ends, then handled as usual. Children inherit the hold:
    a Ctrl-C does not cut their docker client short either."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def ignore_signals() -> None:
    """From here on SIGINT and SIGTERM change nothing: what remains is to put things in order, or nothing."""
    for signal_number in SIGNALS:
        signal.signal(signal_number, signal.SIG_IGN)


def interrupt(signal_number: int, _frame: object) -> None:
    """The handler of SIGINT and SIGTERM: the deployment stops where it is, and the recovery that follows
    is not interrupted in turn."""
    ignore_signals()
    raise Interrupted(signal_number)


def docker(*arguments: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """A docker command, never cut short by a signal: one cut short leaves the engine finishing it unseen,
    after the recovery has looked (a rename or a create done behind its back)."""
    with signals_deferred():
        result = subprocess.run(["docker", *arguments], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise DeployError(f"'docker {arguments[0]}' failed: {result.stderr.strip()}", DOCKER_FAILED)
    return result.stdout.strip()


@dataclass(frozen=True)
class Container:
    """A container as docker inspect shows it; id "" when there is no such container."""

    id: str = ""
    status: str = ""  # created, running, exited, ...
    image: str = ""
    health: str = ""  # starting, healthy, unhealthy; "" without a health check

    @property
    def healthy(self) -> bool:
        return self.status == "running" and self.health == "healthy"


def inspect(name: str) -> Container:
    # The JSON, not a --format template: a container that never started has no State.Health, and a template
    # naming it fails (the client reads the JSON as a map), so that such a container looked like none.
    found = json.loads(docker("container", "inspect", name, check=False) or "[]")  # "[]" when there is none
    if not found:
        return Container()
    state = found[0]["State"]
    return Container(
        found[0]["Id"], state["Status"], found[0]["Config"]["Image"], state.get("Health", {}).get("Status", "")
    )


def what_runs(name: str) -> str:
    container = inspect(name)
    return f"{name} runs {container.image}" if container.status == "running" else f"nothing runs as {name}"


def reproducible_archive(files: dict[str, Path], destination: Path) -> None:
    """A .tar.gz of files whose bytes depend on their names and contents alone (no times, no owners)."""

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
        return info

    with (
        destination.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, path in files.items():
            archive.add(path, arcname=name, filter=anonymous)


@contextmanager
def staged_model(model_file: Path, test_data_file: Path, context: Path) -> Iterator[tuple[str, str]]:
    """The model and test data inside the build context, at a path named by their contents: the build
    arguments (MODEL_FILE, MODEL_TEST_FILE) and so the build cache are the same for the same files.
    A .pkl travels with its model.json as one .tar.gz."""
    for path in (model_file, test_data_file):
        if not path.is_file():
            raise DeployError(f"{path} is not a file", BAD_INPUT)
    parent = context / STAGING_PARENT
    parent.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=parent))
    try:
        metadata = model_file.with_name(METADATA_FILE_NAME)
        if model_file.suffix == ".pkl" and metadata.is_file():
            model_name = "model.tar.gz"
            reproducible_archive({"model.pkl": model_file, METADATA_FILE_NAME: metadata}, scratch / model_name)
        else:
            model_name = model_file.name
            shutil.copyfile(model_file, scratch / model_name)
        shutil.copyfile(test_data_file, scratch / "test_data.json")
        digest = hashlib.sha256()
        for path in sorted(scratch.iterdir()):
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        staging = parent / digest.hexdigest()[:16]
        shutil.rmtree(staging, ignore_errors=True)
        scratch.rename(staging)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    try:
        yield f"{STAGING_PARENT}/{staging.name}/{model_name}", f"{STAGING_PARENT}/{staging.name}/test_data.json"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def build(image: str, model_file: Path, test_data_file: Path) -> None:
    with staged_model(model_file, test_data_file, PROJECT_DIR) as (model_arg, test_arg):
        print(f"building {image} (the build runs the tests and the accuracy check)", flush=True)
        result = subprocess.run(
            ["docker", "build", "-t", image, "--build-arg", f"MODEL_FILE={model_arg}",
             "--build-arg", f"MODEL_TEST_FILE={test_arg}", str(PROJECT_DIR)]
        )  # fmt: skip
    if result.returncode != 0:
        raise DeployError(f"the build of {image} failed (tests or accuracy check: see above)", BUILD_FAILED)


class Deployment:
    """The containers of one deployment: NAME, NAME-previous while swapping, NAME-candidate while trying.

    What to do after a failure or a signal is read from the containers as they are, not from how far this
    run thinks it got: settle() is right whichever docker command came last, and a second settle() changes
    nothing."""

    def __init__(self, args: argparse.Namespace, image: str, password: str) -> None:
        self.args = args
        self.image = image
        self.name = args.container_name
        self.previous = f"{self.name}-previous"
        self.candidate = f"{self.name}-candidate"
        # The id of the container under NAME before this run touched anything ("" when none); None until known,
        # and then this run has created nothing under NAME.
        self.previous_id: str | None = None
        # The password travels in the docker client's environment only; `--env NAME` passes it on by name.
        self.environ = {**os.environ, "SESSION_PASSWORD": password}

    def settings_arguments(self) -> list[str]:
        names = ["SESSION_PASSWORD", *(name for name in SERVICE_SETTINGS if os.environ.get(name))]
        return [argument for name in names for argument in ("--env", name)]

    def run(self) -> None:
        with signals_deferred():  # mending what an earlier run left is a recovery: not to be interrupted
            self.settle()
        self.previous_id = inspect(self.name).id
        build(self.image, self.args.model_file, self.args.test_data_file)
        self.try_candidate()
        self.swap()

    def settle(self) -> None:
        """One container under NAME afterwards, the new one if it was found healthy, else the previous one:
        the candidate goes; a previous one beside a healthy NAME goes; a previous one beside a NAME that is
        not healthy (a new version, or none) comes back as NAME, running. A new version that replaced
        nothing goes when it is not healthy. Never removes a container that is the only one serving."""
        docker("rm", "--force", "--volumes", self.candidate, check=False)
        current = inspect(self.name)
        if inspect(self.previous).id:
            if current.healthy:
                docker("rm", "--force", self.previous, check=False)  # the next run's settle() retries
                return
            print(f"putting {self.previous} back as {self.name} (the new version was not found healthy)")
            if current.id:
                docker("rm", "--force", self.name)
            docker("rename", self.previous, self.name)
            docker("start", self.name)  # nothing to do when it still runs
        elif self.previous_id == "" and current.id and not current.healthy:
            docker("rm", "--force", self.name)  # a first version never found healthy

    def deployed(self) -> bool:
        """Whether the container under NAME is the one this run created."""
        return self.previous_id is not None and inspect(self.name).id not in ("", self.previous_id)

    def try_candidate(self) -> None:
        """The new version in a container of its own, until healthy; settle() removes it when it is not."""
        docker("run", "--detach", "--name", self.candidate, "--log-driver", "json-file",
               *self.settings_arguments(), self.image, env=self.environ)  # fmt: skip
        outcome = self.wait_until_healthy(self.candidate)
        if outcome != "healthy":
            logs = subprocess.run(["docker", "logs", "--tail", str(LOG_LINES_SHOWN), self.candidate],
                                  capture_output=True, text=True)  # fmt: skip
            raise DeployError(
                f"{self.image} did not become healthy ({outcome}); its last lines:\n{logs.stdout}{logs.stderr}",
                UNHEALTHY,
            )
        docker("rm", "--force", "--volumes", self.candidate)  # with the anonymous volume the image's VOLUME gave it

    def swap(self) -> None:
        log_driver = "json-file" if self.args.json_log else "journald"
        if self.previous_id:
            docker("rename", self.name, self.previous)
        docker("create", "--name", self.name, "--restart", "on-failure:5",
               "--log-driver", log_driver, "--log-opt", f"tag={self.args.log_tag or self.name}",
               "--publish", f"{self.args.port_mapping}:{CONTAINER_PORT}",
               "--volume", f"{self.name}-data:/app/instance",
               *self.settings_arguments(), self.image, env=self.environ)  # fmt: skip
        if self.previous_id:
            docker("stop", "--time", str(STOP_SECONDS), self.previous)
        docker("start", self.name)
        outcome = self.wait_until_healthy(self.name)
        if outcome != "healthy":
            raise DeployError(f"{self.image} did not become healthy as {self.name} ({outcome})", UNHEALTHY)
        if self.previous_id:
            docker("rm", self.previous)

    def wait_until_healthy(self, name: str) -> str:
        """'healthy', or what the container was when it stopped being worth waiting for."""
        deadline = time.monotonic() + self.args.health_timeout
        while True:
            container = inspect(name)
            if container.status == "running" and container.health in ("healthy", "unhealthy"):
                return container.health
            if container.status not in ("created", "running"):
                return f"{container.status or 'gone'}, {container.health or 'no health check'}"
            if time.monotonic() >= deadline:
                return f"still {container.health or container.status} after {self.args.health_timeout:.0f} s"
            time.sleep(HEALTH_POLL_SECONDS)


def deploy(deployment: Deployment) -> None:
    try:
        deployment.run()
        ignore_signals()  # deployed: a signal from here on has nothing to undo
    except DeployError:
        ignore_signals()  # putting things in order is not to be interrupted in turn
        try:
            deployment.settle()
        except DeployError as error:
            raise DeployError(
                f"the previous version could not be put back ({error}); "
                f"start it by hand: docker rename {deployment.previous} {deployment.name} && "
                f"docker start {deployment.name}",
                NOT_RESTORED,
            ) from error
        raise


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
    parser.add_argument("--port-mapping", type=int, default=80,
                        help=f"host port mapped to the container's {CONTAINER_PORT} (default 80)")  # fmt: skip
    parser.add_argument("--json-log", action="store_true", help="json-file logs instead of journald")
    parser.add_argument("--log-tag", help="the logs' tag (default: the container name)")
    parser.add_argument("--health-timeout", type=float, default=120, help="seconds to wait for healthy (default 120)")
    args = parser.parse_args(argv)
    args.container_name = args.container_name or args.image_name.rsplit("/", 1)[-1]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    image = f"{args.image_name}:{args.image_version}"
    for signal_number in SIGNALS:
        signal.signal(signal_number, interrupt)
    deployment = None
    try:
        password = read_password(args.session_password)
        if not password:
            raise DeployError("the session password is empty", BAD_INPUT)
        deployment = Deployment(args, image, password)
        deploy(deployment)
    except DeployError as error:
        ignore_signals()  # the report of what runs is not to be cut short
        # A signal after the new version was found healthy keeps it: the last line says which version runs.
        outcome = "deployed all the same" if deployment and deployment.deployed() else "not deployed"
        print(f"deploy-docker: {error}\ndeploy-docker: {outcome}; {what_runs(args.container_name)}", file=sys.stderr)
        return error.exit_status
    print(f"{args.container_name} runs {image} on port {args.port_mapping} and is healthy.")
    if args.json_log:
        print(f"Read its logs with: docker logs {args.container_name}")
    else:
        print(f"Read its logs with: journalctl CONTAINER_NAME={args.container_name}")
    return DEPLOYED


if __name__ == "__main__":
    sys.exit(main())
