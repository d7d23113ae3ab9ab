"""Experiments in SQL: which candidate model takes which share of traffic, and what became of it.

The database is the one store every replica shares, so the candidate's model.pkl (and its model.json)
travel in the row itself. At most one experiment runs at a time: a partial unique index enforces it, so two
operators starting one at once cannot both succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from app.store.tables import experiments, replicas

RUNNING, STOPPED, PROMOTED, ROLLED_BACK = "running", "stopped", "promoted", "rolled_back"
# How far each state is along an experiment's life: a state never goes back (a promotion can still be rolled back).
PROGRESS = {RUNNING: 0, PROMOTED: 1, STOPPED: 2, ROLLED_BACK: 2}


class ExperimentError(Exception):
    """An operation the experiments' state does not allow; the message says why."""


@dataclass(frozen=True)
class Experiment:
    """An experiment's row without the candidate's bytes."""

    id: int
    state: str
    share: float
    control_version: str
    candidate_version: str
    candidate_signature: str | None
    ranking_gate_skipped: bool
    started_at: datetime
    ended_at: datetime | None
    reason: str | None
    interval_lower: float | None = None
    interval_upper: float | None = None


HEADER_COLUMNS = [
    column for column in experiments.columns if column.name not in ("candidate_model", "candidate_metadata")
]


def start_experiment(
    engine: Engine,
    *,
    share: float,
    control_version: str,
    candidate_version: str,
    candidate_model: bytes,
    candidate_metadata: str,
    candidate_signature: str,
    ranking_gate_skipped: bool,
) -> int:
    """Record a running experiment and return its id; refuses while another runs."""
    row = {
        "state": RUNNING,
        "share": share,
        "control_version": control_version,
        "candidate_version": candidate_version,
        "candidate_model": candidate_model,
        "candidate_metadata": candidate_metadata,
        "candidate_signature": candidate_signature,
        "ranking_gate_skipped": ranking_gate_skipped,
        "started_at": datetime.now(UTC),
    }
    try:
        with engine.begin() as connection:
            return connection.execute(experiments.insert().values(row)).inserted_primary_key[0]
    except IntegrityError as error:
        running = latest_experiment(engine)
        raise ExperimentError(f"experiment {running.id} is running: stop or promote it first") from error


def latest_experiment(engine: Engine) -> Experiment | None:
    with engine.connect() as connection:
        row = connection.execute(select(*HEADER_COLUMNS).order_by(experiments.c.id.desc()).limit(1)).mappings().first()
    return None if row is None else Experiment(**row)


def candidate_files(engine: Engine, experiment_id: int) -> tuple[bytes, str | None]:
    """The candidate's model.pkl bytes and its model.json text."""
    with engine.connect() as connection:
        row = connection.execute(
            select(experiments.c.candidate_model, experiments.c.candidate_metadata).where(
                experiments.c.id == experiment_id
            )
        ).one()
    return row.candidate_model, row.candidate_metadata


def end_experiment(engine: Engine, experiment_id: int, state: str, reason: str) -> None:
    """Stop or promote a running experiment; refuses one that is not running."""
    _move(engine, experiment_id, RUNNING, state, reason, ended_at=datetime.now(UTC))


def roll_back(engine: Engine, experiment_id: int, reason: str) -> None:
    """Undo a promotion: the control serves again; refuses an experiment that is not promoted."""
    _move(engine, experiment_id, PROMOTED, ROLLED_BACK, reason)


def _move(engine: Engine, experiment_id: int, current: str, state: str, reason: str, **values: object) -> None:
    with engine.begin() as connection:
        moved = connection.execute(
            update(experiments)
            .where(experiments.c.id == experiment_id, experiments.c.state == current)
            .values(state=state, reason=reason, **values)
        )
    if moved.rowcount != 1:
        raise ExperimentError(f"experiment {experiment_id} is not {current}")


def record_replica(engine: Engine, name: str, serving: list[dict], *, forget_before: datetime) -> None:
    """Renew a replica's report of what its workers serve, and forget replicas silent since forget_before."""
    with engine.begin() as connection:
        connection.execute(delete(replicas).where((replicas.c.name == name) | (replicas.c.seen_at < forget_before)))
        connection.execute(replicas.insert().values(name=name, serving=serving, seen_at=datetime.now(UTC)))


def replicas_seen(engine: Engine, since: datetime) -> list[dict]:
    """Each replica that reported since then: its name, what its workers serve, and when it said so."""
    with engine.connect() as connection:
        rows = connection.execute(select(replicas).where(replicas.c.seen_at >= since).order_by(replicas.c.name))
        return [dict(row) for row in rows.mappings()]


Bounds = tuple[float | None, float | None]


def narrow_interval(engine: Engine, experiment_id: int, narrow: Callable[[Bounds], Bounds]) -> Bounds:
    """Replace the experiment's running interval by narrow(stored) and return it: a compare-and-set, tried
    again when another replica's guardrail changed the interval in between, so that no narrowing is lost.
    The read and the write are two transactions, so that no lock is held while `narrow` computes."""
    bounds = experiments.c.interval_lower, experiments.c.interval_upper
    while True:
        with engine.connect() as connection:
            stored = tuple(connection.execute(select(*bounds).where(experiments.c.id == experiment_id)).one())
        narrower = narrow(stored)
        if narrower == stored:
            return stored
        unchanged = [bound.is_not_distinct_from(value) for bound, value in zip(bounds, stored, strict=True)]
        with engine.begin() as connection:
            changed = connection.execute(
                update(experiments)
                .where(experiments.c.id == experiment_id, *unchanged)
                .values(interval_lower=narrower[0], interval_upper=narrower[1])
            )
        if changed.rowcount == 1:
            return narrower
