"""One step in containers of the local engine, as Bitbucket runs a step.

- The build container: the step's image, the clone at $BITBUCKET_CLONE_DIR, each of the step's caches mounted
  at its path (kept in a directory of the host between runs, as Bitbucket keeps them between pipelines).
- Each service: a container of its image in the build container's network namespace, so on localhost.
  The `docker` service is a proxy (pipeline-docker-service) from tcp://localhost:2375 to the local engine,
  whose socket is mounted into the proxy only; the step gets DOCKER_HOST and the docker client's executable,
  which Bitbucket mounts into a step that names the service.
- The script: its lines in order in one `sh`, each echoed first; the first line that fails ends the step
  with its status, and the runner learns which line it was.
Every container goes when the step ends, with its anonymous volumes.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from deploy.pipeline.file import DOCKER_SERVICE, Step

CLONE_DIR = "/opt/atlassian/pipelines/agent/build"
# Where the runner's files for the step (its script) are mounted, beside the clone as Bitbucket's agent has it.
AGENT_DIR = "/opt/atlassian/pipelines/agent/tmp"
SSH_DIR = "/opt/atlassian/pipelines/agent/ssh"
DOCKER_SERVICE_IMAGE = "pipeline-docker-service"
DOCKER_SERVICE_RECIPE = Path(__file__).resolve().parents[1] / "stand-ins" / "bitbucket-docker-service"
ENGINE_SOCKET = "/var/run/docker.sock"
FAILED_LINE_FILE = "failed-line"


@dataclass(frozen=True)
class StepSettings:
    """What every step of a run gets beside what the file says."""

    run_name: str  # the containers' prefix, pipeline-...
    cache_dir: Path
    variables: dict[str, str]  # BITBUCKET_* and the like, by value
    secured: tuple[str, ...] = ()  # names whose values pass from this environment by name only
    mounts: tuple[tuple[str, str], ...] = ()  # (host path, container path), read-only
    ssh_files: dict[str, Path] = field(default_factory=dict)  # id_rsa, known_hosts: the repository's SSH key


def docker(*arguments: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *arguments], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {arguments[0]} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def script_file(script: tuple[str, ...]) -> str:
    """The step's script for sh: each line echoed, then run; the first that fails writes its number and ends it."""
    parts = [f'cd "{CLONE_DIR}"']
    for number, line in enumerate(script, start=1):
        parts += [
            f"printf '+ %s\\n' {shlex.quote(line)}",
            line,
            f"status=$?; [ $status -eq 0 ] || {{ echo {number} > {AGENT_DIR}/{FAILED_LINE_FILE}; exit $status; }}",
        ]
    return "\n".join(parts) + "\n"


def ensure_docker_service_image() -> None:
    if subprocess.run(["docker", "image", "inspect", DOCKER_SERVICE_IMAGE], capture_output=True).returncode != 0:
        docker("build", "--quiet", "-t", DOCKER_SERVICE_IMAGE, str(DOCKER_SERVICE_RECIPE))


@dataclass
class StepRun:
    step: Step
    number: int
    settings: StepSettings
    work_dir: Path  # the clone and the agent's files of this step
    containers: list[str] = field(default_factory=list)

    @property
    def clone(self) -> Path:
        return self.work_dir / "build"

    def run(self) -> int | None:
        """The number of the script line that failed, or None when every line passed."""
        agent = self.work_dir / "agent"
        agent.mkdir()
        (agent / "script.sh").write_text(script_file(self.step.script))
        try:
            build = self.start_build_container(agent)
            for service in self.step.services:
                self.start_service(service.name, service.image, service.variables, build)
            exit_status = subprocess.run(
                ["docker", "exec", build, "sh", f"{AGENT_DIR}/script.sh"], stdin=subprocess.DEVNULL
            ).returncode
        finally:
            self.remove_containers()
        if exit_status == 0:
            return None
        failed = agent / FAILED_LINE_FILE
        return int(failed.read_text()) if failed.exists() else 0

    def start_build_container(self, agent: Path) -> str:
        settings, name = self.settings, f"{self.settings.run_name}-step{self.number}"
        options = ["--volume", f"{self.clone}:{CLONE_DIR}", "--volume", f"{agent}:{AGENT_DIR}", "--workdir", CLONE_DIR]
        for cache, path in self.step.caches.items():
            (settings.cache_dir / cache).mkdir(parents=True, exist_ok=True)
            options += ["--volume", f"{settings.cache_dir / cache}:{path}"]
        for host_path, path in settings.mounts:
            options += ["--volume", f"{host_path}:{path}:ro"]
        for file_name, host_path in settings.ssh_files.items():
            options += ["--volume", f"{host_path}:{SSH_DIR}/{file_name}:ro"]
        variables = dict(settings.variables)
        if self.step.deployment:
            variables["BITBUCKET_DEPLOYMENT_ENVIRONMENT"] = self.step.deployment
        if self.step.uses_docker:
            variables["DOCKER_HOST"] = "tcp://localhost:2375"
            options += ["--volume", f"{shutil.which('docker')}:/usr/local/bin/docker:ro"]
        options += [argument for key, value in variables.items() for argument in ("--env", f"{key}={value}")]
        options += [argument for key in settings.secured for argument in ("--env", key)]  # values from here, by name
        docker("run", "--detach", "--name", name, *options, "--entrypoint", "sleep", self.step.image, "infinity")
        self.containers.append(name)
        if settings.ssh_files:
            self.configure_ssh(name)
        return name

    def configure_ssh(self, build: str) -> None:
        """As Bitbucket does with the repository's SSH key: the client uses it, and trusts the known hosts."""
        config = f"IdentityFile {SSH_DIR}/id_rsa\nUserKnownHostsFile {SSH_DIR}/known_hosts\n"
        command = f"mkdir -p -m 700 ~/.ssh && printf '%s' {shlex.quote(config)} > ~/.ssh/config"
        docker("exec", build, "sh", "-c", command)

    def start_service(self, service: str, image: str, variables: dict[str, str], build: str) -> None:
        name = f"{self.settings.run_name}-step{self.number}-{service}"
        options = [argument for key, value in variables.items() for argument in ("--env", f"{key}={value}")]
        if service == DOCKER_SERVICE:
            ensure_docker_service_image()
            image, options = DOCKER_SERVICE_IMAGE, ["--volume", f"{ENGINE_SOCKET}:{ENGINE_SOCKET}"]
        docker("run", "--detach", "--name", name, "--network", f"container:{build}", *options, image)
        self.containers.append(name)

    def remove_containers(self) -> None:
        for name in reversed(self.containers):  # the services first: they live in the build container's network
            docker("rm", "--force", "--volumes", name, check=False)
        self.containers.clear()
