"""deploy-docker.py against a fake docker.

No Docker engine runs on these machines, so the tests put a fake `docker` first
on PATH. It records every call (arguments, and whether SESSION_PASSWORD was in
its environment) and plays the engine: a build that passes or fails, containers
that exist, stop, start and report a health status that the test chooses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.repository
PASSWORD = "deploy-secret-4711"

FAKE_DOCKER = r"""#!{python}
import json, os, sys
from pathlib import Path

state_path = Path(os.environ["FAKE_DOCKER_STATE"])
state = json.loads(state_path.read_text()) if state_path.exists() else {{"containers": {{}}}}
containers = state["containers"]
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_CALLS"], "a") as calls:
    calls.write(json.dumps({{"args": args, "password_in_env": os.environ.get("SESSION_PASSWORD")}}) + "\n")

def save(code=0):
    state_path.write_text(json.dumps(state))
    sys.exit(code)

command = args[0]
if command == "build":
    save(1 if os.environ.get("FAKE_BUILD") == "fail" else 0)
if command == "container" and args[1] == "inspect":
    save(0 if args[2] in containers else 1)
if command == "rename":
    containers[args[2]] = containers.pop(args[1])
    save()
if command in ("stop", "start"):
    containers[args[1]]["status"] = "exited" if command == "stop" else "running"
    save()
if command == "rm":
    name = args[-1]
    if name not in containers:
        print("No such container", file=sys.stderr)
        save(1)
    if containers[name]["status"] == "running" and "--force" not in args:
        print("container is running", file=sys.stderr)
        save(1)
    del containers[name]
    save()
if command == "run":
    name = args[args.index("--name") + 1]
    containers[name] = {{"image": args[-1], "status": "running", "health": os.environ.get("FAKE_HEALTH", "healthy")}}
    save()
if command == "inspect":
    name = args[-1]
    if name not in containers:
        save(1)
    container = containers[name]
    health = container["health"] if container["status"] == "running" else ""
    print(f"{{container['status']}} {{health}}")
    save()
print("fake docker: unexpected call", args, file=sys.stderr)
save(2)
"""


class FakeDocker:
    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.bin.mkdir()
        executable = self.bin / "docker"
        executable.write_text(FAKE_DOCKER.format(python=sys.executable))
        executable.chmod(0o755)
        self.state = directory / "state.json"
        self.calls_file = directory / "calls.jsonl"

    def add_container(self, name: str, image: str) -> None:
        state = json.loads(self.state.read_text()) if self.state.exists() else {"containers": {}}
        state["containers"][name] = {"image": image, "status": "running", "health": "healthy"}
        self.state.write_text(json.dumps(state))

    def containers(self) -> dict:
        return json.loads(self.state.read_text())["containers"] if self.state.exists() else {}

    def calls(self) -> list[dict]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def commands(self) -> list[list[str]]:
        return [call["args"] for call in self.calls()]


@pytest.fixture
def fake(tmp_path: Path) -> FakeDocker:
    return FakeDocker(tmp_path)


@pytest.fixture
def model_files(synthetic_model_dir: Path) -> tuple[Path, Path]:
    return synthetic_model_dir / "model.pkl", synthetic_model_dir / "test_data.json"


def deploy(
    fake: FakeDocker, model_files: tuple[Path, Path], *options: str, password: str = PASSWORD, stdin: str = "", **env
) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key != "SESSION_PASSWORD"}
    environ.update(
        PATH=f"{fake.bin}:{environ['PATH']}",
        FAKE_DOCKER_STATE=str(fake.state),
        FAKE_DOCKER_CALLS=str(fake.calls_file),
        **env,
    )
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy-docker.py"),
            "recommender",
            "1.2",
            *map(str, model_files),
            password,
            *options,
        ],
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_help_lists_the_spec_arguments() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "deploy-docker.py"), "--help"], capture_output=True, text=True)
    for word in ("IMAGE_NAME", "IMAGE_VERSION", "MODEL_FILE", "TEST_DATA_FILE", "SESSION_PASSWORD",
                 "--container-name", "--port-mapping", "--json-log", "--log-tag"):  # fmt: skip
        assert word in result.stdout


def test_a_first_deploy_builds_and_starts_with_journald(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    result = deploy(fake, model_files)
    assert result.returncode == 0, result.stderr
    build = fake.commands()[0]
    assert build[:3] == ["build", "-t", "recommender:1.2"]
    assert any(arg.startswith("MODEL_FILE=.deploy-staging/") and arg.endswith("model.tar.gz") for arg in build)
    assert any(arg.startswith("MODEL_TEST_FILE=.deploy-staging/") for arg in build)
    (run,) = [command for command in fake.commands() if command[0] == "run"]
    assert run == [
        "run", "--detach", "--name", "recommender", "--restart", "on-failure:5",
        "--log-driver", "journald", "--log-opt", "tag=recommender", "--publish", "80:80",
        "--volume", "recommender-data:/app/instance", "--env", "SESSION_PASSWORD", "recommender:1.2",
    ]  # fmt: skip
    assert fake.containers() == {"recommender": {"image": "recommender:1.2", "status": "running", "health": "healthy"}}
    assert "journalctl CONTAINER_NAME=recommender" in result.stdout
    assert not (ROOT / ".deploy-staging").exists() or not any((ROOT / ".deploy-staging").iterdir())


def test_the_password_reaches_docker_only_through_the_environment(
    fake: FakeDocker, model_files: tuple[Path, Path]
) -> None:
    assert deploy(fake, model_files).returncode == 0
    assert all(PASSWORD not in " ".join(call["args"]) for call in fake.calls())
    (run,) = [call for call in fake.calls() if call["args"][0] == "run"]
    assert run["password_in_env"] == PASSWORD


def test_the_password_can_come_from_standard_input(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    assert deploy(fake, model_files, password="-", stdin=PASSWORD + "\n").returncode == 0
    (run,) = [call for call in fake.calls() if call["args"][0] == "run"]
    assert run["password_in_env"] == PASSWORD


def test_a_healthy_new_container_replaces_the_old_one(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    fake.add_container("recommender", "recommender:1.1")
    result = deploy(fake, model_files, "--port-mapping", "8080")
    assert result.returncode == 0, result.stderr
    assert [command for command in fake.commands() if command[0] in ("rename", "stop", "rm")] == [
        ["rename", "recommender", "recommender-previous"],
        ["stop", "recommender-previous"],
        ["rm", "recommender-previous"],
    ]
    assert fake.containers() == {"recommender": {"image": "recommender:1.2", "status": "running", "health": "healthy"}}
    assert "--publish" in (run := next(c for c in fake.commands() if c[0] == "run")) and "8080:80" in run


def test_an_unhealthy_new_container_is_removed_and_the_old_one_comes_back(
    fake: FakeDocker, model_files: tuple[Path, Path]
) -> None:
    fake.add_container("recommender", "recommender:1.1")
    result = deploy(fake, model_files, FAKE_HEALTH="unhealthy")
    assert result.returncode == 1
    assert "not healthy (unhealthy); the previous one is back and running" in result.stderr
    assert [command for command in fake.commands() if command[0] in ("rename", "stop", "rm", "start")][-3:] == [
        ["rm", "--force", "recommender"],
        ["rename", "recommender-previous", "recommender"],
        ["start", "recommender"],
    ]
    assert fake.containers() == {"recommender": {"image": "recommender:1.1", "status": "running", "health": "healthy"}}


def test_a_container_that_never_gets_healthy_is_rolled_back_after_the_timeout(
    fake: FakeDocker, model_files: tuple[Path, Path]
) -> None:
    fake.add_container("recommender", "recommender:1.1")
    result = deploy(fake, model_files, "--health-timeout", "0", FAKE_HEALTH="starting")
    assert result.returncode == 1
    assert "still starting after 0 s" in result.stderr
    assert fake.containers()["recommender"]["image"] == "recommender:1.1"


def test_a_failed_first_deploy_leaves_no_container(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    result = deploy(fake, model_files, FAKE_HEALTH="unhealthy")
    assert result.returncode == 1
    assert "it was removed" in result.stderr
    assert fake.containers() == {}


def test_a_failed_build_leaves_the_running_container_alone(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    fake.add_container("recommender", "recommender:1.1")
    result = deploy(fake, model_files, FAKE_BUILD="fail")
    assert result.returncode == 1
    assert "the build of recommender:1.2 failed" in result.stderr
    assert [command[0] for command in fake.commands()] == ["build"]
    assert fake.containers()["recommender"] == {"image": "recommender:1.1", "status": "running", "health": "healthy"}


def test_json_logs_and_a_tag(fake: FakeDocker, model_files: tuple[Path, Path]) -> None:
    result = deploy(fake, model_files, "--json-log", "--log-tag", "reco", "--container-name", "web")
    assert result.returncode == 0, result.stderr
    run = next(command for command in fake.commands() if command[0] == "run")
    assert run[6:10] == ["--log-driver", "json-file", "--log-opt", "tag=reco"]
    assert run[run.index("--name") + 1] == "web"
    assert "docker logs web" in result.stdout


def test_a_missing_model_file_stops_before_building(fake: FakeDocker, tmp_path: Path) -> None:
    result = deploy(fake, (tmp_path / "nothing.pkl", tmp_path / "nothing.json"))
    assert result.returncode == 1
    assert "is not a file" in result.stderr
    assert fake.commands() == []
