"""What workers serve during an experiment: assignment by unit, and following the record through its disk copy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from app.experiment import arms as arms_module
from app.experiment.arms import CANDIDATE, CONTROL, Arms, Choice, in_candidate_arm
from app.experiment.candidate_files import load_candidate, signature, signing_key
from app.experiment.publication import publish
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME, Recommender
from app.store.experiments import PROMOTED, STOPPED, end_experiment, start_experiment
from app.store.recommendation_log import RecommendationLog, make_engine, sqlite_url
from app.store.tables import experiments
from tests.conftest import JWT_SECRET
from tests.experiment.candidates import reversed_candidate

# The key create_app derives from the settings fixture's JWT_SECRET_KEY.
KEY = signing_key(JWT_SECRET)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    log = RecommendationLog(make_engine(sqlite_url(tmp_path / "experiments.sqlite3")))
    log.create_tables()
    yield log.engine
    log.engine.dispose()


@pytest.fixture
def control(synthetic_model_dir: Path) -> Recommender:
    return Recommender.load(synthetic_model_dir / MODEL_FILE_NAME)


def start(engine: Engine, candidate_dir: Path, control: Recommender, share: float = 0.5) -> int:
    """Record an experiment as `start` does: the candidate's files, signed with the service's key."""
    model = (candidate_dir / MODEL_FILE_NAME).read_bytes()
    metadata = (candidate_dir / METADATA_FILE_NAME).read_text()
    return start_experiment(
        engine,
        share=share,
        control_version=control.version,
        candidate_version=Recommender.load(candidate_dir / MODEL_FILE_NAME).version,
        candidate_model=model,
        candidate_metadata=metadata,
        candidate_signature=signature(KEY, model, metadata.encode()),
        ranking_gate_skipped=False,
    )


def worker(control: Recommender, directory: Path) -> Arms:
    """A worker's arms that follow the published state only when told (follow()), as its thread does."""
    return Arms(control, directory, KEY, follow_every=None)


@pytest.mark.parametrize("share", [0.1, 0.5, 0.8])
def test_a_unit_stays_in_its_arm_and_the_arms_take_their_share(share: float) -> None:
    units = [f"person-{number}" for number in range(20_000)]
    in_candidate = [in_candidate_arm(7, unit, share) for unit in units]
    assert in_candidate == [in_candidate_arm(7, unit, share) for unit in units]
    # Binomial: 4 standard deviations of the share over 20,000 units.
    assert abs(sum(in_candidate) / len(units) - share) < 4 * (share * (1 - share) / len(units)) ** 0.5


def test_another_experiment_draws_the_arms_afresh() -> None:
    units = [f"person-{number}" for number in range(2_000)]
    first = [in_candidate_arm(1, unit, 0.5) for unit in units]
    second = [in_candidate_arm(2, unit, 0.5) for unit in units]
    agreeing = sum(a == b for a, b in zip(first, second, strict=True)) / len(units)
    assert 0.45 < agreeing < 0.55


def test_workers_follow_start_stop_and_promote_through_the_published_state(
    engine: Engine, control: Recommender, synthetic_candidate_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "experiment"
    arms = worker(control, directory)
    assert arms.choose("anyone").arm is None
    candidate_version = Recommender.load(synthetic_candidate_dir / MODEL_FILE_NAME).version

    experiment_id = start(engine, synthetic_candidate_dir, control, share=0.5)
    publish(engine, directory)
    arms.follow()
    choices = {unit: arms.choose(unit) for unit in (f"unit-{number}" for number in range(400))}
    for unit, choice in choices.items():
        expected = CANDIDATE if in_candidate_arm(experiment_id, unit, 0.5) else CONTROL
        assert (choice.arm, choice.experiment_id) == (expected, experiment_id)
        assert choice.model.version == (control.version if expected == CONTROL else candidate_version)
    assert {choice.arm for choice in choices.values()} == {CONTROL, CANDIDATE}

    end_experiment(engine, experiment_id, PROMOTED, "promoted by a test")
    publish(engine, directory)
    arms.follow()
    promoted = arms.choose("unit-1")
    assert (promoted.arm, promoted.model.version, arms.serving().version) == (
        None,
        candidate_version,
        candidate_version,
    )
    # A worker that starts after the promotion (a restart, a redeploy on the same volume) serves the candidate.
    assert worker(control, directory).serving().version == arms.serving().version


def test_after_a_stop_every_request_gets_the_control(
    engine: Engine, control: Recommender, synthetic_candidate_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "experiment"
    experiment_id = start(engine, synthetic_candidate_dir, control)
    publish(engine, directory)
    arms = worker(control, directory)
    end_experiment(engine, experiment_id, STOPPED, "stopped by a test")
    publish(engine, directory)
    arms.follow()
    assert {arms.choose(f"unit-{number}").model.version for number in range(50)} == {control.version}


def test_without_the_database_workers_keep_the_arms_they_last_knew(
    engine: Engine, control: Recommender, synthetic_candidate_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "experiment"
    experiment_id = start(engine, synthetic_candidate_dir, control)
    publish(engine, directory)
    engine.dispose()
    (tmp_path / "experiments.sqlite3").unlink()  # the database is gone; a publisher cannot look any more
    restarted = worker(control, directory)
    assert {restarted.choose(f"unit-{number}").arm for number in range(100)} == {CONTROL, CANDIDATE}
    assert {restarted.choose(f"unit-{number}").experiment_id for number in range(100)} == {experiment_id}


def eventually(condition: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_worker_loads_a_new_candidate_in_its_thread_while_requests_get_what_it_served(
    engine: Engine, control: Recommender, synthetic_candidate_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loading, loaded = threading.Event(), threading.Event()

    def slow_load(*arguments: object) -> Recommender:
        loading.set()
        assert loaded.wait(10)
        return load_candidate(*arguments)

    monkeypatch.setattr(arms_module, "load_candidate", slow_load)
    directory = tmp_path / "experiment"
    arms = Arms(control, directory, KEY, follow_every=0.01)
    experiment_id = start(engine, synthetic_candidate_dir, control)
    publish(engine, directory)
    assert loading.wait(5), "the worker's thread never took up the published state"
    # The candidate is still loading: requests get the control, as before the start, and do not wait for the load.
    answered = []
    requests = threading.Thread(target=lambda: answered.extend(arms.choose(f"unit-{n}") for n in range(100)))
    requests.start()
    requests.join(timeout=5)
    stuck = requests.is_alive()
    loaded.set()
    assert not stuck, "a request waited for the candidate to load"
    assert set(answered) == {Choice(control)}
    assert eventually(lambda: arms.choose("unit-1").experiment_id == experiment_id)


def tamper(engine: Engine, tampering: str, other_model_dir: Path) -> None:
    """Change the running experiment's row as someone with write access to the database alone could."""
    other = {
        "candidate_model": (other_model_dir / MODEL_FILE_NAME).read_bytes(),
        "candidate_metadata": (other_model_dir / METADATA_FILE_NAME).read_text(),
        "candidate_version": Recommender.load(other_model_dir / MODEL_FILE_NAME).version,
    }
    changes = {
        "other bytes": {"candidate_model": other["candidate_model"]},
        "other bytes, version and metadata": other,
        "no signature": {"candidate_signature": None},
        "no metadata": {"candidate_metadata": None},
    }[tampering]
    with engine.begin() as connection:
        connection.execute(update(experiments).values(**changes))


@pytest.mark.parametrize(
    ("tampering", "refused_for"),
    [
        ("other bytes", "model.pkl: No such file"),  # publication wrote no file whose SHA-256 is not its version
        ("other bytes, version and metadata", "its signature is wrong"),
        ("no signature", "its signature is missing"),
        ("no metadata", "model.json: No such file"),
    ],
)
def test_a_tampered_candidate_is_refused_by_every_worker_in_one_error_line_and_the_control_serves(
    engine: Engine,
    control: Recommender,
    synthetic_model_dir: Path,
    synthetic_candidate_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tampering: str,
    refused_for: str,
) -> None:
    directory = tmp_path / "experiment"
    start(engine, synthetic_candidate_dir, control)
    tamper(engine, tampering, reversed_candidate(synthetic_model_dir, tmp_path / "other").parent)
    running = worker(control, directory)  # a worker that was serving before the publication
    publish(engine, directory)
    running.follow()
    workers = [running] + [worker(control, directory) for _ in range(2)]  # and workers started after it
    publish(engine, directory)
    for each in workers:
        each.follow()
    refusals = [record for record in caplog.records if record.name == arms_module.__name__]
    assert [record.levelname for record in refusals] == ["ERROR"] * len(workers), refusals
    assert all("the candidate is refused (" in record.getMessage() for record in refusals)
    assert all(refused_for in record.getMessage() for record in refusals), refusals[0].getMessage()
    for each in workers:
        assert {each.choose(f"unit-{number}") for number in range(100)} == {Choice(each.control)}
