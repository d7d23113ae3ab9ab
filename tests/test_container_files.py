"""The Dockerfile, docker-compose.yml and bitbucket-pipelines.yml, checked without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from deploy.pipeline.file import read_pipelines

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.repository
# The tests the image build runs: those that need neither the data set, nor services, nor more programs.
IMAGE_TESTS = "not dataset and not service and not stack and not repository and not browser and not docker and not slow"
# A setting that holds a secret, by its name.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN")
DOCKERFILE = (ROOT / "Dockerfile").read_text() if (ROOT / "Dockerfile").exists() else ""


def instructions(keyword: str) -> list[str]:
    """The arguments of each instruction of that keyword, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{keyword} ")]


@pytest.mark.parametrize(
    "dockerfile",
    [
        "Dockerfile",
        *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "deploy" / "stand-ins").glob("*/Dockerfile")),
    ],
)
def test_hadolint_finds_nothing_in_the_dockerfiles(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_every_file_the_dockerfile_copies_from_the_context_exists() -> None:
    for copy in instructions("COPY"):
        if copy.startswith("--from="):
            continue
        *sources, _ = copy.split()
        for source in sources:
            source = {"${MODEL_FILE}": "model/model.pkl", "${MODEL_TEST_FILE}": "model/test_data.json"}.get(
                source, source
            )
            if source.startswith("model/"):
                continue  # made by training, given as build arguments
            assert (ROOT / source).exists(), source


def test_the_image_runs_the_stack_as_app_checks_its_health_and_serves_an_unprivileged_port() -> None:
    assert instructions("CMD") == ['["deploy/run-stack"]']
    assert instructions("EXPOSE") == ["8080"]
    assert instructions("USER") == ["10001:10001"]
    assert "ML_MODEL_PATH=/model/model.pkl" in DOCKERFILE
    assert any("/health" in line for line in DOCKERFILE.splitlines() if "CMD" in line and "python" in line)
    assert re.search(r"^HEALTHCHECK ", DOCKERFILE, re.MULTILINE)


def test_the_build_runs_the_tests_and_the_accuracy_check_as_the_image_runs_them() -> None:
    runs = " ".join(instructions("RUN"))
    # The test stage is the image itself; the final stage takes its report, so that no builder can skip it.
    assert re.findall(r"^FROM (\S+)(?: AS (\S+))?$", DOCKERFILE, re.MULTILINE)[-2:] == [
        ("runtime", "test"),
        ("runtime", ""),
    ]
    assert "--from=test /tmp/build-check.txt /model/build-check.txt" in instructions("COPY")
    assert "pytest -q | tee /tmp/build-check.txt" in runs
    assert "python tests/run_accuracy_tests.py /model/model.pkl /model/test_data.json" in runs
    # The selection is the image's environment, so `docker exec <container> pytest` runs the same.
    (selection,) = [env for env in instructions("ENV") if "PYTEST_ADDOPTS=" in env]
    assert f"""PYTEST_ADDOPTS='-p no:cacheprovider -m "{IMAGE_TESTS}"'""" in selection


def stages() -> dict[str, tuple[str, list[str]]]:
    """Each stage of the Dockerfile by name (the last, unnamed, as "final"): its base and its lines."""
    found = {}
    for block in re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]:
        header, *lines = block.splitlines()
        base, _, name = header.partition(" AS ")
        found[name.strip() or "final"] = (base.strip(), lines)
    return found


def package_lines(lines: list[str]) -> list[int]:
    """Where a stage brings the packages in: a pip install, or the builder's virtual environment copied."""
    brought = ("pip install", "COPY --from=builder /opt/venv")
    return [i for i, line in enumerate(lines) if any(way in line for way in brought)]


def test_in_every_stage_the_packages_are_in_place_before_the_code_is_copied() -> None:
    """So that a change to the code rebuilds no layer of packages: in each stage that copies app/, the packages
    come first, from its own lines or from the stage it is built on."""
    every_stage = stages()

    def has_packages(name: str) -> bool:
        base, lines = every_stage[name]
        return bool(package_lines(lines)) or (base in every_stage and has_packages(base))

    copying_code = 0
    for name, (base, lines) in every_stage.items():
        code = [i for i, line in enumerate(lines) if line.startswith("COPY app/")]
        if not code:
            continue
        copying_code += 1
        own = package_lines(lines)
        assert (own and max(own) < min(code)) or (not own and base in every_stage and has_packages(base)), name
    assert copying_code >= 2, "the Dockerfile copies the code in fewer stages than this test reads"


def test_the_data_set_and_local_state_stay_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("data/", "instance/", ".venv/", "reports/"):
        assert entry in ignored


def test_compose_runs_scalable_api_replicas_behind_one_port_with_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"db", "redis", "api", "balancer"}
    api = services["api"]
    assert "ports" not in api and "container_name" not in api  # --scale api=3 needs both absent
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert services["balancer"]["ports"] == ["${PORT:-8080}:80"]
    assert (ROOT / services["balancer"]["volumes"][0].split(":")[0]).is_file()
    assert services["db"]["image"] == "${POSTGRES_IMAGE:-postgres:15}"
    assert api["environment"]["RATELIMIT_STORAGE_URI"] == "redis://redis:6379"


def test_the_stack_file_takes_its_secrets_from_swarm_and_updates_health_gated() -> None:
    stack = yaml.safe_load((ROOT / "deploy" / "stack.yml").read_text())
    services = stack["services"]
    assert set(services) == {"db", "redis", "api", "balancer"}
    api = services["api"]
    assert api["image"] == "${IMAGE:-recommender:latest}"
    assert api["deploy"]["replicas"] == "${REPLICAS:-2}"
    assert set(api["secrets"]) == {"session_password", "jwt_secret_key", "db_password"}
    assert services["db"]["secrets"] == ["db_password"]
    assert stack["secrets"] == {
        name: {"external": True} for name in ("session_password", "jwt_secret_key", "db_password")
    }
    assert "SESSION_PASSWORD" not in api["environment"] and "JWT_SECRET_KEY" not in api["environment"]
    update = api["deploy"]["update_config"]
    assert (update["order"], update["failure_action"]) == ("start-first", "rollback")
    assert services["balancer"]["ports"] == [{"target": 80, "published": "${PORT:-8080}", "mode": "host"}]
    assert services["db"]["deploy"]["placement"]["constraints"] == ["node.labels.recommender.db == true"]
    assert {service["deploy"]["endpoint_mode"] for service in services.values()} == {"dnsrr"}
    for config in stack["configs"].values():
        assert (ROOT / "deploy" / config["file"]).is_file()


@pytest.mark.parametrize("path", ["docker-compose.yml", "deploy/stack.yml"])
def test_no_secret_and_no_default_password_in_the_compose_and_stack_files(path: str) -> None:
    """Secrets reach a service only as files in /run/secrets/ (SPEC 8), never from a variable, defaulted or not."""
    text = (ROOT / path).read_text()
    variables = set(re.findall(r"\$\{(\w+)", text)) - {"SECRETS_DIR"}  # where compose's secret files are
    assert not [variable for variable in variables if SECRET_NAME.search(variable)]
    for name, service in yaml.safe_load(text)["services"].items():
        for variable, value in service.get("environment", {}).items():
            if SECRET_NAME.search(variable):
                assert variable.endswith("_FILE") and value.startswith("/run/secrets/"), (name, variable)
                assert value.removeprefix("/run/secrets/") in service["secrets"], (name, variable)
            elif "://" in str(value):
                assert urlsplit(value).password is None, (name, variable)


def test_composes_secret_files_stay_out_of_git_and_of_the_build_context() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    files = [entry["file"].replace("${SECRETS_DIR:-./secrets}", "secrets") for entry in compose["secrets"].values()]
    assert files == ["secrets/session_password.txt", "secrets/jwt_secret_key.txt", "secrets/db_password.txt"]
    ignored = subprocess.run(["git", "check-ignore", *files], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == files
    assert "secrets/" in (ROOT / ".dockerignore").read_text().split()


def test_the_pipeline_tests_then_builds_then_deploys_by_hand() -> None:
    pipeline = yaml.safe_load((ROOT / "bitbucket-pipelines.yml").read_text())
    steps = [entry["step"] for entry in pipeline["pipelines"]["branches"]["main"]]
    assert [step["name"] for step in steps] == [
        "Test",
        "Build the image (tests and accuracy check inside)",
        "Deploy",
    ]
    assert "postgres" in steps[0]["services"]
    assert any('pytest -m "not docker and not privileged"' in line for line in steps[0]["script"])
    assert "redis" in steps[0]["services"]
    assert any(line.startswith("docker build") for line in steps[1]["script"])
    assert steps[2]["trigger"] == "manual"
    # The password goes in on standard input: deploy-docker.py's SESSION_PASSWORD argument is "-".
    (deploy,) = [line for line in steps[2]["script"] if "deploy-docker.py" in line]
    assert deploy.startswith('echo "$SESSION_PASSWORD" | python3 deploy-docker.py ') and " - " in deploy


def test_the_default_pipeline_is_the_main_branch_s_without_its_manual_deploy() -> None:
    pipelines = read_pipelines((ROOT / "bitbucket-pipelines.yml").read_text())
    assert pipelines["branches:main"][:2] == pipelines["default"]
    test, build = pipelines["default"]
    assert [service.name for service in test.services] == ["postgres", "redis"]
    assert test.artifacts == ("model/**",) and test.caches == {"pip": "/root/.cache/pip"}
    assert build.uses_docker and {test.image, build.image} == {"python:3.11"}
    assert pipelines["branches:main"][2].manual


def check_jsonschema(pipeline_file: Path) -> subprocess.CompletedProcess:
    command = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    schema = ["--builtin-schema", "vendor.bitbucket-pipelines"]
    return subprocess.run([command, *schema, str(pipeline_file)], capture_output=True, text=True)


def test_bitbucket_s_schema_passes_the_pipeline_file_and_fails_a_wrong_type(tmp_path: Path) -> None:
    assert check_jsonschema(ROOT / "bitbucket-pipelines.yml").returncode == 0
    wrong = tmp_path / "bitbucket-pipelines.yml"
    wrong.write_text(
        (ROOT / "bitbucket-pipelines.yml").read_text().replace("name: Test\n", 'name: Test\n        max-time: "long"\n')
    )
    result = check_jsonschema(wrong)
    assert result.returncode == 1 and "max-time" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("written", "misspelt", "key", "where"),
    [
        ("        script:\n", "        scripts:\n", "scripts", "definitions.steps[0].step"),
        ("pipelines:\n", "pipelinez:\n", "pipelinez", "the top level"),
        ("      image: redis:7.0\n", "      imag: redis:7.0\n", "imag", "definitions.services.redis"),
        (
            "        trigger: manual\n",
            "        trigger: manual\n        timeout: 5\n",
            "timeout",
            "definitions.steps[2].step",
        ),
    ],
    ids=["a step's scripts", "pipelinez", "a service's imag", "a step's timeout"],
)
def test_a_key_the_runner_does_not_know_is_refused_in_one_line(
    tmp_path: Path, written: str, misspelt: str, key: str, where: str
) -> None:
    """Bitbucket's schema lets such keys through; the runner names the key and where it stands."""
    text = (ROOT / "bitbucket-pipelines.yml").read_text()
    assert written in text
    (tmp_path / "bitbucket-pipelines.yml").write_text(text.replace(written, misspelt, 1))
    result = subprocess.run([sys.executable, "-m", "deploy.pipeline", "--check", "--source", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"pipeline: bitbucket-pipelines.yml: unknown key '{key}' in {where}: this runner knows ")
