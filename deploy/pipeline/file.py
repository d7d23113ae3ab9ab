"""bitbucket-pipelines.yml, read into the steps of one pipeline and the services and caches they name.

Bitbucket's published schema (checked in `make lint`) catches wrong types but lets unknown keys through: a step
with `scripts:` instead of `script:`, or a top-level `pipelinez:`, passes it. Here every key is one this runner
acts on, or the file is refused with one line naming the key: nothing in the file is skipped unseen.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

FILE_NAME = "bitbucket-pipelines.yml"
# The keys this runner acts on, by where they stand.
KNOWN_KEYS = {
    "the top level": {"image", "definitions", "pipelines"},
    "definitions": {"services", "steps", "caches"},
    "pipelines": {"default", "branches"},
    "a pipeline's entry": {"step"},
    "a step": {"name", "image", "script", "services", "caches", "artifacts", "trigger", "deployment"},
    "a service": {"image", "variables"},
}
# Bitbucket's predefined caches that make sense here (the local engine keeps its own layer cache).
PREDEFINED_CACHES = {"pip": "/root/.cache/pip"}
# Bitbucket's built-in service: a Docker engine the step reaches through DOCKER_HOST.
DOCKER_SERVICE = "docker"


class PipelineFileError(Exception):
    """The file cannot be run as written; the message says what to change."""


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    variables: dict[str, str]


@dataclass(frozen=True)
class Step:
    name: str
    image: str
    script: tuple[str, ...]
    services: tuple[Service, ...]
    caches: dict[str, str]  # name -> path in the step's container
    artifacts: tuple[str, ...]
    manual: bool
    deployment: str | None

    @property
    def uses_docker(self) -> bool:
        return any(service.name == DOCKER_SERVICE for service in self.services)


def check_keys(mapping: object, where: str, path: str) -> dict:
    if not isinstance(mapping, dict):
        raise PipelineFileError(f"{FILE_NAME}: {path} is not a mapping")
    unknown = sorted(set(mapping) - KNOWN_KEYS[where])
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS[where]))
        raise PipelineFileError(f"{FILE_NAME}: unknown key '{unknown[0]}' in {path}: this runner knows {known}")
    return mapping


def read_services(definitions: dict) -> dict[str, Service]:
    services = {DOCKER_SERVICE: Service(DOCKER_SERVICE, "", {})}
    for name, service in (definitions.get("services") or {}).items():
        if name == DOCKER_SERVICE:
            raise PipelineFileError(f"{FILE_NAME}: definitions.services.docker: the docker service is built in here")
        check_keys(service, "a service", f"definitions.services.{name}")
        if not isinstance(service.get("image"), str):
            raise PipelineFileError(f"{FILE_NAME}: definitions.services.{name}: give its image as a name")
        variables = {key: str(value) for key, value in (service.get("variables") or {}).items()}
        services[name] = Service(name, service["image"], variables)
    return services


def read_caches(definitions: dict) -> dict[str, str]:
    caches = dict(PREDEFINED_CACHES)
    for name, cache in (definitions.get("caches") or {}).items():
        if not isinstance(cache, str):
            raise PipelineFileError(f"{FILE_NAME}: definitions.caches.{name}: give the cache's path only")
        caches[name] = cache
    return caches


def defined(names: list[str], known: dict, what: str, step_name: str) -> list[str]:
    for name in names:
        if name not in known:
            raise PipelineFileError(f"{FILE_NAME}: step '{step_name}': no {what} '{name}' in definitions")
    return names


def read_step(entry: object, path: str, document: dict, services: dict, caches: dict) -> Step:
    step = check_keys(check_keys(entry, "a pipeline's entry", path).get("step"), "a step", f"{path}.step")
    name = step.get("name", path)
    image = step.get("image", document.get("image"))
    if not isinstance(image, str):
        raise PipelineFileError(f"{FILE_NAME}: step '{name}': give its image (or the top level's) as a name")
    script = step.get("script")
    if not script or not all(isinstance(line, str) for line in script):
        raise PipelineFileError(f"{FILE_NAME}: step '{name}': its script must be a list of command lines")
    return Step(
        name=name,
        image=image,
        script=tuple(script),
        services=tuple(services[service] for service in defined(step.get("services", []), services, "service", name)),
        caches={cache: caches[cache] for cache in defined(step.get("caches", []), caches, "cache", name)},
        artifacts=tuple(step.get("artifacts", [])),
        manual=step.get("trigger", "automatic") == "manual",
        deployment=step.get("deployment"),
    )


def read_pipelines(text: str) -> dict[str, list[Step]]:
    """Every pipeline of the file by its selector ('default', 'branches:main'), each step checked."""
    document = check_keys(yaml.safe_load(text), "the top level", "the top level")
    definitions = check_keys(document.get("definitions") or {}, "definitions", "definitions")
    services, caches = read_services(definitions), read_caches(definitions)
    for number, entry in enumerate(definitions.get("steps") or []):
        read_step(entry, f"definitions.steps[{number}]", document, services, caches)
    pipelines = check_keys(document.get("pipelines"), "pipelines", "pipelines")
    selected = {"default": pipelines.get("default") or []}
    selected |= {f"branches:{branch}": steps for branch, steps in (pipelines.get("branches") or {}).items()}
    return {
        selector: [read_step(entry, f"{selector}[{n}]", document, services, caches) for n, entry in enumerate(steps)]
        for selector, steps in selected.items()
    }


def select(pipelines: dict[str, list[Step]], selector: str) -> list[Step]:
    if selector not in pipelines:
        raise PipelineFileError(f"{FILE_NAME}: no pipeline '{selector}': it has {', '.join(pipelines)}")
    return pipelines[selector]
