"""An experiment's running sums: what app/experiment/analysis.py's Arm needs, kept as rows arrive.

A unit is the request's client, else the recommendation itself; x is a unit's liked titles (scored 4 or 5,
an unscored title counts as not liked), y its recommendations. Per client the table keeps x, y and its scored
recommendations; a recommendation without a client needs no row of its own (its y is 1, its x is read from its
scores, which a score reads anyway), so the copy of client-less traffic writes only the arms' rows. Per arm it
keeps the units, the sums of x, x^2, y, y^2 and x*y, the titles shown, the recommendations scored, the units
with one scored (scored_units), the scores and their sum. Each change is made in the transaction that stores
its row (the drain's copy of a journal, a recommendation recorded without one, a score), so the sums are exact
and a crash cannot count a row twice: `status` and the guardrail read a few rows however long the log.

A change to a unit's x or y changes x^2, y^2 and x*y by the difference of the squares (a client's row returns
its new values). Scoring a title again replaces the old score. An arm's sums are split over SHARDS
rows, each transaction adding to one at random, so that copies and scores seldom wait on one another.
Locks are taken in one order, the recommendation, then units sorted, then arm rows sorted, so that
concurrent transactions cannot deadlock.
"""

from __future__ import annotations

import functools
import random
from collections import Counter, defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, Insert, Table, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import ARM_COUNTS, experiment_arm_sums, experiment_units, recommendations, scores

SHARDS = 16
SUMS = (*ARM_COUNTS, "score_sum")
UNIT_SUMS = ("recommendations", "liked", "scored")
# app/model/data.py's RELEVANT_RATING (the store may not import the model): a score this high is a liked title.
LIKED_SCORE = 4

Key = tuple[int, str, str]  # (experiment id, arm, unit)
ArmKey = tuple[int, str]  # (experiment id, arm)
# Every statement is built once and run with parameters: building one anew per score (columns, conflict
# clause, cache key) took two thirds of a score's time on PostgreSQL.
RECOMMENDED = (
    select(recommendations.c.experiment_id, recommendations.c.arm, recommendations.c.client)
    .where(recommendations.c.id == bindparam("recommendation_id"))
    .with_for_update()  # one score of a recommendation at a time: each reads what the last one left
)
GIVEN = select(scores.c.movie, scores.c.score).where(scores.c.recommendation_id == bindparam("recommendation_id"))


def take_write_lock(connection: Connection) -> None:
    """On SQLite, take the database's write lock now, in a transaction that reads before it writes (a score, a
    journal's copy): its reads then see what the last writer left, as the sums need, and its first write cannot
    fail as "database is locked" (a deferred transaction that has read cannot wait for the lock: SQLite refuses
    it at once). On PostgreSQL the rows read FOR UPDATE are locked instead."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def add_recommendations(connection: Connection, rows: list[dict]) -> None:
    """Count the recommendations of an experiment inserted in this transaction (or about to be). Each must be
    new to the table: the journal's copy passes only those its insert took, and a recommendation recorded
    directly has a new id (were it there, its insert would fail, and this transaction with it)."""
    in_experiment = [row for row in rows if row.get("experiment_id") is not None]
    if not in_experiment:
        return
    added, alone, shown = Counter(), Counter(), Counter()
    for row in in_experiment:
        arm_key = (row["experiment_id"], row["arm"])
        if row["client"]:
            added[(*arm_key, row["client"])] += 1
        else:  # a unit of its own, not scored yet (a score waits for its recommendation): y = 1, x = 0
            alone[arm_key] += 1
        shown[arm_key] += len(row["titles"])
    changes: dict[ArmKey, Counter] = defaultdict(Counter)
    for arm_key, units in alone.items():
        changes[arm_key].update(units=units, recommendations=units, recommendation_squares=units)
    unit_changes = {key: (n, 0, 0) for key, n in added.items()}
    for (experiment_id, arm, unit), (y, x, _) in _add_to_units(connection, unit_changes):
        change, old_y = changes[(experiment_id, arm)], y - added[(experiment_id, arm, unit)]
        change.update(
            units=int(old_y == 0),
            recommendations=y - old_y,
            recommendation_squares=y * y - old_y * old_y,
            liked_times_recommendations=x * (y - old_y),
        )
    for arm_key, titles in shown.items():
        changes[arm_key]["shown"] += titles
    _add_to_arms(connection, changes)


def add_score(connection: Connection, *, recommendation_id: str, movie: str, score: float) -> None:
    """Count a score about to be stored (or to replace the one stored) in this transaction."""
    recommended = connection.execute(RECOMMENDED, {"recommendation_id": recommendation_id}).one()
    if recommended.experiment_id is None:
        return
    given = dict(connection.execute(GIVEN, {"recommendation_id": recommendation_id}).all())
    old = given.get(movie)
    first = int(not given)  # the recommendation's first score
    change = Counter(scored=first, scores=int(old is None), score_sum=score - (old or 0))
    liked = _liked(score) - _liked(old)
    arm_key = (recommended.experiment_id, recommended.arm)
    if liked or first:
        if recommended.client:
            ((_, (y, x, scored)),) = _add_to_units(connection, {(*arm_key, recommended.client): (0, liked, first)})
        else:  # the recommendation is the unit: one recommendation, scored now, its liked titles in given
            y, x, scored = 1, sum(map(_liked, given.values())) + liked, 1
        old_x = x - liked
        change.update(liked=liked, liked_squares=x * x - old_x * old_x, liked_times_recommendations=liked * y)
        change["scored_units"] += int(first and scored == 1)  # the unit's first scored recommendation
    _add_to_arms(connection, {arm_key: change})


def arm_sums(engine: Engine, experiment_id: int) -> dict[str, dict[str, float]]:
    """Each arm's sums (only arms with a recommendation), added up over its shards."""
    query = (
        select(
            experiment_arm_sums.c.arm,
            *(
                cast(func.sum(experiment_arm_sums.c[name]), experiment_arm_sums.c[name].type).label(name)
                for name in SUMS
            ),
        )
        .where(experiment_arm_sums.c.experiment_id == experiment_id)
        .group_by(experiment_arm_sums.c.arm)
    )
    with engine.connect() as connection:
        return {row["arm"]: {name: row[name] for name in SUMS} for row in connection.execute(query).mappings()}


def _liked(score: float | None) -> int:
    return int(score is not None and score >= LIKED_SCORE)


@functools.cache
def _upsert(dialect_name: str, table: Table, sums: tuple[str, ...], *, returning: bool = False) -> Insert:
    """INSERT into table, or, where its primary key is there, add each of sums to the row's (returning the row)."""
    statement = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    upsert = statement.on_conflict_do_update(
        index_elements=list(table.primary_key),
        set_={name: table.c[name] + statement.excluded[name] for name in sums},
    )
    return upsert.returning(*table.c) if returning else upsert


def _add_to_units(connection: Connection, changes: dict[Key, tuple[int, ...]]) -> Iterable[tuple[Key, tuple]]:
    """Add (recommendations, liked, scored) to units, made when new; each unit's key and its new figures.

    One statement with a list of parameters (SQLAlchemy's "insertmanyvalues"), compiled once and cached: a
    statement of 1,000 rows of literal VALUES, compiled anew for every batch, made the journal's copy of an
    experiment's recommendations three times slower than that of the others (benchmarks/README.md)."""
    values = [
        {"experiment_id": key[0], "arm": key[1], "unit": key[2], **dict(zip(UNIT_SUMS, changes[key], strict=True))}
        for key in sorted(changes)
    ]
    if not values:
        return
    upsert = _upsert(connection.dialect.name, experiment_units, UNIT_SUMS, returning=True)
    for row in connection.execute(upsert, values):
        yield (row.experiment_id, row.arm, row.unit), (row.recommendations, row.liked, row.scored)


def _add_to_arms(connection: Connection, changes: dict[ArmKey, Counter]) -> None:
    """Add to each arm's sums, in one shard (the same for every arm of this transaction)."""
    shard = random.randrange(SHARDS)
    upsert = _upsert(connection.dialect.name, experiment_arm_sums, SUMS)
    for (experiment_id, arm), change in sorted(changes.items()):
        row = {"experiment_id": experiment_id, "arm": arm, "shard": shard, **{name: change[name] for name in SUMS}}
        connection.execute(upsert, row)
