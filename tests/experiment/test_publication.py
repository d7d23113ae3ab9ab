"""Publication: the state only moves forward, files are fsynced around their renames, replicas say what they serve."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from app.experiment import durable_files, publication
from app.experiment.__main__ import full_status
from app.experiment.arms import STATE_FILE_NAME, Arms
from app.experiment.publication import publish
from app.model.recommender import MODEL_FILE_NAME, Recommender
from app.store.experiments import (
    PROMOTED,
    STOPPED,
    end_experiment,
    latest_experiment,
    roll_back,
)
from app.store.tables import replicas
from tests.experiment.candidates import reversed_candidate
from tests.experiment.test_arms import control, engine, start, worker

__all__ = ["control", "engine"]  # fixtures, shared with test_arms.py


def published(directory: Path) -> dict:
    return json.loads((directory / STATE_FILE_NAME).read_text())


def step(engine: Engine, experiment_id: int, change: str) -> None:
    if change == "stop":
        end_experiment(engine, experiment_id, STOPPED, "stopped by a test")
    elif change == "promote":
        end_experiment(engine, experiment_id, PROMOTED, "promoted by a test")
    elif change == "roll back":
        roll_back(engine, experiment_id, "rolled back by a test")


@pytest.mark.parametrize(
    ("before", "race", "expected"),
    [
        ([], "stop", (1, "stopped")),
        (["promote"], "roll back", (1, "rolled_back")),
        (["stop", "next experiment"], "promote", (2, "promoted")),
    ],
)
def test_a_publisher_that_read_the_record_before_a_change_cannot_undo_what_another_published(
    engine: Engine,
    control: Recommender,
    synthetic_candidate_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before: list[str],
    race: str,
    expected: tuple[int, str],
) -> None:
    """Two mules sharing the directory: the first read the record, then the change happened, and the second
    published it before the first wrote what it had read."""
    directory = tmp_path / "experiment"
    experiment_id = start(engine, synthetic_candidate_dir, control)
    for change in before:
        if change == "next experiment":
            read_first = latest_experiment(engine)  # the first publisher's read is of the experiment before
            experiment_id = start(engine, synthetic_candidate_dir, control)
        else:
            step(engine, experiment_id, change)
    publish(engine, directory)
    if "next experiment" not in before:
        read_first = latest_experiment(engine)
    step(engine, experiment_id, race)
    publish(engine, directory)  # the second publisher, after the change
    assert (published(directory)["id"], published(directory)["state"]) == expected
    monkeypatch.setattr(publication, "latest_experiment", lambda _: read_first)
    publish(engine, directory)  # the first publisher, with what it read before
    assert (published(directory)["id"], published(directory)["state"]) == expected


def test_each_file_is_fsynced_before_its_rename_and_its_directory_after(
    engine: Engine, control: Recommender, synthetic_candidate_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{descriptor}")).name))
        real_fsync(descriptor)

    def renamed(real: object) -> object:
        def rename(source: str | Path, destination: str | Path) -> None:
            events.append(("rename", Path(destination).name))
            real(source, destination)

        return rename

    monkeypatch.setattr(durable_files.os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", renamed(real_rename))
    monkeypatch.setattr(durable_files.os, "replace", renamed(real_replace))
    directory = tmp_path / "experiment"
    start(engine, synthetic_candidate_dir, control)
    publish(engine, directory)
    version = published(directory)["candidate_version"]
    candidate_files = [event for event in events if event[0] == "fsync" and event[1] in ("model.pkl", "model.json")]
    staging = [name for kind, name in events if kind == "fsync" and name.startswith(".incoming-")]
    state_staging = [name for kind, name in events if kind == "fsync" and name.startswith(f".{STATE_FILE_NAME}.")]
    assert len(candidate_files) == 2 and len(staging) == 1 and len(state_staging) == 1, events
    assert events[events.index(candidate_files[-1]) + 1 :] == [
        ("fsync", staging[0]),
        ("rename", version),
        ("fsync", "candidates"),
        ("fsync", state_staging[0]),
        ("rename", STATE_FILE_NAME),
        ("fsync", "experiment"),
    ]


def served(engine: Engine) -> dict:
    status = json.loads(full_status(engine, as_json=True))
    return {
        "replicas": {replica["name"]: replica["serving"] for replica in status["replicas"]},
        "promotion_ended": status["promotion_ended"],
    }


def test_a_rollback_or_a_deploy_ends_a_promotion_and_status_says_what_each_replica_serves(
    engine: Engine, control: Recommender, synthetic_model_dir: Path, synthetic_candidate_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "experiment"
    candidate = Recommender.load(synthetic_candidate_dir / MODEL_FILE_NAME).version
    host = socket.gethostname()
    experiment_id = start(engine, synthetic_candidate_dir, control, share=0.3)
    serving = worker(control, directory)

    def follow_and_report(arms: Arms, engine: Engine = engine) -> dict:
        publish(engine, directory)
        arms.follow()
        arms.serving()  # it answers a request
        arms.report()
        publish(engine, directory)  # the mule's next publication carries the report
        return served(engine)

    assert follow_and_report(serving) == {
        "replicas": {host: [{"control": control.version, "serves": control.version, "candidate": candidate,
                             "share": 0.3}]},
        "promotion_ended": None,
    }  # fmt: skip
    step(engine, experiment_id, "promote")
    assert follow_and_report(serving) == {
        "replicas": {host: [{"control": control.version, "serves": candidate, "candidate": None, "share": None}]},
        "promotion_ended": False,
    }
    step(engine, experiment_id, "roll back")
    assert follow_and_report(serving)["replicas"][host][0]["serves"] == control.version
    assert serving.choose("anyone").model is control

    # Promoted again, then the operator deploys model C: a new worker whose ML_MODEL_PATH holds it replaces this one.
    experiment_id = start(engine, synthetic_candidate_dir, control)
    step(engine, experiment_id, "promote")
    assert follow_and_report(serving)["replicas"][host][0]["serves"] == candidate
    deployed = Recommender.load(reversed_candidate(synthetic_model_dir, tmp_path / "model-c"))
    replaced = worker(deployed, directory)
    assert replaced.choose("anyone").model is deployed
    assert follow_and_report(replaced) == {
        "replicas": {host: [{"control": deployed.version, "serves": deployed.version, "candidate": None,
                             "share": None}]},
        "promotion_ended": True,
    }  # fmt: skip
    assert "the promotion has ended" in full_status(engine, as_json=False)

    # A replica that stopped reporting ages out.
    with engine.begin() as connection:
        connection.execute(update(replicas).values(seen_at=datetime.now(UTC) - timedelta(seconds=60)))
    assert served(engine) == {"replicas": {}, "promotion_ended": False}
