"""The database's word on experiments, written to a replica's disk for its workers (arms.py) to follow.

The mule publishes every PUBLISH_INTERVAL_SECONDS, and deploy/preflight.py once before a stack serves, so
that a replica that starts (or restarts) serves what the record says: a promoted candidate stays promoted.
The candidate's files are written first and the state last, each fsynced and published by one rename
(durable_files.py): a worker never sees a state whose candidate is not there whole, even after a power cut. A
state file that cannot be read, or a candidate file whose SHA-256 is not its version, is rewritten.

Mules sharing the directory (the tasks of a node) take turns, and a state only moves forward: never to an
older experiment, nor back to "running" (or "promoted") once its experiment has gone further. So a mule that
read the record just before a stop cannot undo the stop that another mule published.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from app.experiment.arms import STATE_FILE_NAME, read_state
from app.experiment.candidate_files import candidate_path, is_whole, write_candidate
from app.experiment.durable_files import replace_file
from app.experiment.replicas import report_replica
from app.store.experiments import PROGRESS, PROMOTED, RUNNING, Experiment, candidate_files, latest_experiment

PUBLISH_INTERVAL_SECONDS = 1.0
LOCK_FILE_NAME = ".publication.lock"
log = logging.getLogger(__name__)
# The experiments (by directory, id and start) whose candidate row this process found changed since `start` (its
# bytes are not its version): said once, not fetched again at every publication.
_unwritable: set[tuple[Path, int, datetime]] = set()


def published_state(experiment: Experiment) -> dict:
    return {
        "id": experiment.id,
        "state": experiment.state,
        "share": experiment.share,
        "control_version": experiment.control_version,
        "candidate_version": experiment.candidate_version,
        "signature": experiment.candidate_signature,
    }


def publish(engine: Engine, directory: Path) -> Experiment | None:
    """Bring directory up to the latest experiment's state, and renew this replica's report of what its workers
    serve; the experiment (None when there never was one)."""
    experiment = latest_experiment(engine)
    if experiment is not None:
        publish_experiment(engine, directory, experiment)
    report_replica(engine, directory)
    return experiment


def publish_experiment(engine: Engine, directory: Path, experiment: Experiment) -> None:
    state = published_state(experiment)
    mended = experiment.state in (RUNNING, PROMOTED) and _ensure_candidate(engine, directory, experiment)
    state_file = directory / STATE_FILE_NAME
    with _taking_turns(directory):
        current = read_state(state_file)
        if (current == state and not mended) or (current is not None and is_behind(state, current)):
            return
        replace_file(state_file, json.dumps(state).encode())


def is_behind(state: dict, current: dict) -> bool:
    """Whether state is older than the one published: an earlier experiment, or an earlier step of the same."""
    if state["id"] != current["id"]:
        return state["id"] < current["id"]
    return PROGRESS.get(state["state"], 0) < PROGRESS.get(current["state"], 0)


def _ensure_candidate(engine: Engine, directory: Path, experiment: Experiment) -> bool:
    """Write the candidate's files when they are not there whole; whether they were (re)written."""
    version, seen = experiment.candidate_version, (directory, experiment.id, experiment.started_at)
    if seen in _unwritable or is_whole(directory, version):
        return False
    if candidate_path(directory, version).exists():
        log.warning("%s is torn (its SHA-256 is not its version): written again", candidate_path(directory, version))
    if write_candidate(directory, version, *candidate_files(engine, experiment.id)):
        return True
    _unwritable.add(seen)
    log.error("experiment %s: its candidate's bytes in the database are not version %s", experiment.id, version[:12])
    return False


@contextmanager
def _taking_turns(directory: Path) -> Iterator[None]:
    """The directory's state file to this process alone (the other mules of the node wait)."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
