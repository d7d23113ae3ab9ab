"""The database's word on experiments, written to a replica's disk for its workers (arms.py) to follow.

The mule publishes every PUBLISH_INTERVAL_SECONDS, and deploy/preflight.py once before a stack serves, so
that a replica that starts (or restarts) serves what the record says: a promoted candidate stays promoted.
The candidate's files are written first and the state last, each by one rename: a worker never sees a state
whose candidate is not there whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from app.experiment.arms import CANDIDATES, STATE_FILE_NAME, candidate_path
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.store.experiments import STOPPED, Experiment, candidate_files, latest_experiment

PUBLISH_INTERVAL_SECONDS = 1.0


def published_state(experiment: Experiment) -> dict:
    return {
        "id": experiment.id,
        "state": experiment.state,
        "share": experiment.share,
        "candidate_version": experiment.candidate_version,
    }


def publish(engine: Engine, directory: Path) -> Experiment | None:
    """Bring directory up to the latest experiment's state; the experiment (None when there never was one)."""
    experiment = latest_experiment(engine)
    if experiment is None:
        return None
    state = published_state(experiment)
    state_file = directory / STATE_FILE_NAME
    if state_file.is_file() and json.loads(state_file.read_text(encoding="utf-8")) == state:
        return experiment
    if experiment.state != STOPPED and not candidate_path(directory, experiment.candidate_version).is_file():
        _write_candidate(engine, directory, experiment)
    _replace(state_file, json.dumps(state).encode())
    return experiment


def _write_candidate(engine: Engine, directory: Path, experiment: Experiment) -> None:
    model, metadata = candidate_files(engine, experiment.id)
    (directory / CANDIDATES).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory / CANDIDATES, prefix=".incoming-"))
    (staging / MODEL_FILE_NAME).write_bytes(model)
    if metadata is not None:
        (staging / METADATA_FILE_NAME).write_text(metadata, encoding="utf-8")
    try:
        staging.rename(candidate_path(directory, experiment.candidate_version).parent)
    except OSError:  # another replica's mule, sharing the directory, put it there first
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()


def _replace(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as staging:
        staging.write(content)
    os.replace(staging.name, path)
