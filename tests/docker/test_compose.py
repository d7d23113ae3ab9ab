"""docker-compose.yml for real: PostgreSQL, Redis, two API replicas and the balancer, as one service, with its
secrets in files made as the README makes them."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.docker.conftest import (
    PASSWORD,
    ROOT,
    compose_command,
    docker,
    make_compose_secrets,
    readme_block,
    wait_for_health,
    wait_until,
)
from tests.docker.traffic import RECOMMEND, login
from tests.servers import free_port

pytestmark = pytest.mark.docker

ROUNDS = 200
# Variables a secret could come in by besides its file: every project here runs without them.
SECRET_VARIABLES = ("SESSION_PASSWORD", "JWT_SECRET_KEY", "POSTGRES_PASSWORD", "DATABASE_PASSWORD", "SECRETS_DIR")


@dataclass
class Project:
    name: str
    url: str
    environ: dict[str, str]
    secrets_dir: Path

    def run(self, *arguments: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*compose_command(), "-p", self.name, "-f", str(ROOT / "docker-compose.yml"), *arguments],
            env=environ or self.environ, capture_output=True, text=True, timeout=300, cwd=ROOT,
        )  # fmt: skip

    def compose(self, *arguments: str) -> str:
        result = self.run(*arguments)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip()

    def leftovers(self) -> tuple[str, str, str]:
        """The project's containers, volumes and networks still on the engine."""
        label = f"label=com.docker.compose.project={self.name}"
        return (
            docker("ps", "-a", "-q", "--filter", label),
            docker("volume", "ls", "-q", "--filter", label),
            docker("network", "ls", "-q", "--filter", label),
        )

    def api_containers(self) -> list[str]:
        return self.compose("ps", "-q", "api").split()

    def replica_urls(self) -> list[str]:
        containers = self.api_containers()
        network = f"{self.name}_default"
        template = f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}'
        return [f"http://{docker('inspect', '--format', template, container)}:8080" for container in containers]

    def database_rows(self, sql: str) -> list[str]:
        return self.compose("exec", "-T", "db", "psql", "-U", "postgres", "-d", "recommender", "-Atc", sql).splitlines()


def container_log(container: str) -> str:
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def new_project(image: str, secrets_dir: Path) -> Project:
    """A project of its own name and port, its secrets in secrets_dir, no secret in its environment."""
    port = free_port()
    environ = {name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES}
    environ |= {"IMAGE": image, "PORT": str(port), "SECRETS_DIR": str(secrets_dir)}
    return Project(f"test{uuid.uuid4().hex[:8]}", f"http://127.0.0.1:{port}", environ, secrets_dir)


@pytest.fixture(scope="module")
def project(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    running = new_project(image, make_compose_secrets(tmp_path_factory.mktemp("compose"), PASSWORD))
    try:
        running.compose("up", "-d", "--no-build", "--scale", "api=2")
        wait_for_health(running.url)
        # The balancer answers once one replica does; the tests address each replica too.
        for replica in running.replica_urls():
            wait_for_health(replica)
        yield running
    finally:
        # Already down when the last test passed; here for the runs where it did not get that far.
        running.compose("down", "--volumes", "--remove-orphans")
        assert running.leftovers() == ("", "", ""), "docker-compose down left some of the project behind"


def test_two_replicas_are_one_service_behind_the_balancer(project: Project) -> None:
    first, second = project.replica_urls()
    headers = login(project.url, PASSWORD)  # a token from the balancer is good at every replica
    ids = []
    for _ in range(ROUNDS):
        answer = requests.post(f"{first}/api/recommend", json=RECOMMEND, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        recommendation = answer.json()
        # Right away, at the other replica: before the first one's mule has copied the recommendation.
        scored = requests.post(
            f"{second}/api/recommend/score",
            json={"id": recommendation["id"], "movie": recommendation["recommendations"][0], "score": 5},
            headers=headers,
            timeout=10,
        )
        assert (scored.status_code, scored.json()) == (200, "Ok"), scored.text
        ids.append(recommendation["id"])
    assert sorted(project.database_rows("SELECT id FROM recommendations")) == sorted(ids)
    assert sorted(project.database_rows("SELECT recommendation_id FROM scores")) == sorted(ids)


def test_metrics_stay_inside_and_the_balancers_own_answers_carry_the_apps_headers(project: Project) -> None:
    hidden = requests.get(f"{project.url}/metrics", timeout=10)
    too_large = requests.post(f"{project.url}/api/login", data=b"x" * 17 * 1024, timeout=10)
    assert (hidden.status_code, hidden.json()) == (404, {"message": "not found"})
    assert (too_large.status_code, too_large.json()) == (413, {"message": "the body is too large"})
    for answer in (hidden, too_large):
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    for replica in project.replica_urls():  # where a scraper inside the network reads them
        assert "http_requests_total" in requests.get(f"{replica}/metrics", timeout=10).text


def test_no_secret_is_in_any_containers_environment_or_configuration(project: Project) -> None:
    secrets = {path.name: path.read_text().strip() for path in project.secrets_dir.glob("*.txt")}
    assert set(secrets) == {"session_password.txt", "jwt_secret_key.txt", "db_password.txt"}
    assert secrets["session_password.txt"] == PASSWORD  # the password the other tests log in with
    for container in project.compose("ps", "-q").split():
        inspected = docker("inspect", container)
        assert not [name for name, value in secrets.items() if value in inspected], container


def test_up_without_a_secret_file_stops_naming_the_file(image: str, tmp_path: Path) -> None:
    secrets_dir = make_compose_secrets(tmp_path, PASSWORD)
    missing = secrets_dir / "jwt_secret_key.txt"
    missing.unlink()
    forgetful = new_project(image, secrets_dir)
    try:
        result = forgetful.run("up", "-d", "--no-build")
        assert result.returncode != 0
        assert str(missing) in result.stdout + result.stderr
        assert forgetful.compose("ps", "-q", "api") == ""
    finally:
        forgetful.compose("down", "--volumes")


# After the others: it leaves this client's address refused for a minute.
def test_the_login_limit_holds_across_replicas_and_counts_only_failures(project: Project) -> None:
    for _ in range(15):
        login(project.url, PASSWORD)
    statuses = [
        requests.post(f"{project.url}/api/login", json={"session_password": "guess"}, timeout=10).status_code
        for _ in range(11)
    ]
    assert statuses == [401] * 10 + [429]
    refused = requests.post(f"{project.url}/api/login", json={"session_password": PASSWORD}, timeout=10)
    assert refused.status_code == 429

    # The balancer spread the guesses over both replicas (each with its own workers), and Redis counted them all.
    # Docker copies a container's output to its log on its own time: the last lines can arrive after the answer.
    def refusals() -> list[int]:
        return [container_log(container).count("refused login from") for container in project.api_containers()]

    wait_until(lambda: sum(refusals()) == 10, 30, "the ten refusals in the replicas' logs")
    per_replica = refusals()
    assert len(per_replica) == 2 and all(per_replica), per_replica


# Last: it takes the project down.
def test_down_as_the_readme_has_it_needs_no_secret(project: Project, tmp_path: Path) -> None:
    down = readme_block("mkdir -m 700 secrets").split("docker-compose down")[1].split("#")[0].split()
    environ = project.environ | {"SECRETS_DIR": str(tmp_path / "never-made")}
    result = project.run("down", *down, environ=environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.leftovers() == ("", "", "")
