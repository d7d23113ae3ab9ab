"""Run one pipeline of bitbucket-pipelines.yml on the local Docker engine: its steps in order, each in a fresh
clone of the commit, the artifacts of the steps before it copied in; the first step that fails ends the run.

python -m deploy.pipeline [--pipeline SELECTOR] [--manual] [--variable NAME]... [--ssh-key FILE --known-hosts FILE]
python -m deploy.pipeline --check     (the file only: every key known, every service and cache defined)

Exit status: 0 every step passed (or the run paused before a manual step), 1 a step failed, 2 the file or the
arguments cannot be run.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from deploy.pipeline.file import FILE_NAME, PipelineFileError, Step, read_pipelines, select
from deploy.pipeline.step import CLONE_DIR, StepRun, StepSettings

PASSED, FAILED, CANNOT_RUN = 0, 1, 2
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bitbucket-pipeline"


def git(*arguments: str) -> str:
    result = subprocess.run(["git", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {arguments[0]} failed: {result.stderr.strip()}")
    return result.stdout


def clone(source: Path, commit: str, destination: Path) -> None:
    """A clone of source checked out at commit, as Bitbucket clones the pushed commit for each step."""
    git("clone", "--quiet", "--no-checkout", str(source), str(destination))
    git("-C", str(destination), "checkout", "--quiet", "--detach", commit)


def collect_artifacts(step: Step, clone_dir: Path, artifacts: Path) -> None:
    """The files the step's artifact patterns match, kept for the steps after it."""
    for pattern in step.artifacts:
        for name in glob.glob(pattern, root_dir=clone_dir, recursive=True):
            if (clone_dir / name).is_file():
                (artifacts / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(clone_dir / name, artifacts / name)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="default", help="'default' or 'branches:NAME' (default: default)")
    parser.add_argument("--manual", action="store_true", help="run manual steps too, as if started by hand")
    parser.add_argument("--variable", action="append", default=[], metavar="NAME",
                        help="a repository variable: its value passes from this environment, by name")  # fmt: skip
    parser.add_argument("--ssh-key", type=Path, help="the repository's SSH key (private), for the steps' ssh")
    parser.add_argument("--known-hosts", type=Path, help="the known hosts for that key")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help=f"default {DEFAULT_CACHE_DIR}")
    parser.add_argument("--source", type=Path, default=Path.cwd(), help="the repository (default: here); its HEAD runs")
    parser.add_argument("--check", action="store_true", help="read the file and stop")
    args = parser.parse_args(argv)
    if bool(args.ssh_key) != bool(args.known_hosts):
        parser.error("give --ssh-key and --known-hosts together")
    missing = [name for name in args.variable if name not in os.environ]
    if missing:
        parser.error(f"--variable {missing[0]}: it is not set in this environment")
    return args


def step_settings(args: argparse.Namespace, commit: str) -> StepSettings:
    branch = git("-C", str(args.source), "rev-parse", "--abbrev-ref", "HEAD").strip()
    variables = {"CI": "true", "BITBUCKET_COMMIT": commit, "BITBUCKET_BRANCH": branch, "BITBUCKET_CLONE_DIR": CLONE_DIR}
    secured, mounts = tuple(args.variable), ()
    # The data set of this machine (no download here): mounted where it lies, and named by ML100K_DIR.
    if os.environ.get("ML100K_DIR"):
        secured += ("ML100K_DIR",)
        mounts = ((os.environ["ML100K_DIR"], os.environ["ML100K_DIR"]),)
    ssh_files = {"id_rsa": args.ssh_key.resolve(), "known_hosts": args.known_hosts.resolve()} if args.ssh_key else {}
    run_name = f"pipeline-{uuid.uuid4().hex[:8]}"
    return StepSettings(run_name, args.cache_dir.resolve(), variables, secured, mounts, ssh_files)


def run_pipeline(args: argparse.Namespace, commit: str, steps: list[Step]) -> int:
    settings = step_settings(args, commit)
    timings: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-") as work:
        artifacts = Path(work) / "artifacts"
        artifacts.mkdir()
        for number, step in enumerate(steps, start=1):
            if step.manual and not args.manual:
                print(f"pipeline: paused before the manual step {number} '{step.name}' (--manual runs it)")
                break
            print(f"pipeline: step {number} '{step.name}' in {step.image}, commit {commit[:12]}", flush=True)
            started = time.monotonic()
            step_run = StepRun(step, number, settings, Path(work) / f"step{number}")
            step_run.work_dir.mkdir()
            clone(args.source, commit, step_run.clone)
            shutil.copytree(artifacts, step_run.clone, dirs_exist_ok=True)
            failed_line = step_run.run()
            timings.append((step.name, time.monotonic() - started))
            if failed_line is not None:
                where = f"at line {failed_line}: {step.script[failed_line - 1]}" if failed_line else "before its script"
                print(f"pipeline: step {number} '{step.name}' failed {where}", file=sys.stderr)
                return FAILED
            collect_artifacts(step, step_run.clone, artifacts)
            print(f"pipeline: step {number} '{step.name}' passed in {timings[-1][1]:.0f} s", flush=True)
    print("pipeline: passed; " + ", ".join(f"'{name}' {seconds:.0f} s" for name, seconds in timings))
    return PASSED


def exit_on_signal(signal_number: int, _frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: the step's containers and the clones are removed on the way out."""
    sys.exit(128 + signal_number)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, exit_on_signal)
    try:
        if args.check:  # the file as it stands, before it is committed
            read_pipelines((args.source / FILE_NAME).read_text())
            return PASSED
        commit = git("-C", str(args.source), "rev-parse", "HEAD").strip()
        steps = select(read_pipelines(git("-C", str(args.source), "show", f"{commit}:{FILE_NAME}")), args.pipeline)
        return run_pipeline(args, commit, steps)
    except (PipelineFileError, RuntimeError) as error:
        print(f"pipeline: {error}", file=sys.stderr)
        return CANNOT_RUN


if __name__ == "__main__":
    sys.exit(main())
