"""The experiments' running sums (experiment_sums.py) made in bulk from the log, by the same rules, in SQL.

Done once, when a database made before the running sums is first used by this version (create_tables):
its experiments, the one running too, are summed from the log in the transaction that makes the sums'
tables, holding a lock that keeps writers out until it commits, so that no row is missed or counted twice.
From then on every row is counted as it is stored. The one scan of the log there is; tests and benchmarks
use it too, to sum a log loaded in bulk.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    case,
    cast,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import DBAPIError

from app.store.experiment_sums import LIKED_SCORE, SUMS
from app.store.tables import experiment_arm_sums, experiment_units, experiments, recommendations, scores

# Each unit's figures, made once and read twice (into the clients' rows and the arms' sums), for this transaction alone.
per_unit = Table(
    "log_sums_per_unit",
    MetaData(),
    Column("experiment_id", Integer),
    Column("arm", String(9)),
    Column("unit", String(64)),
    Column("is_client", Boolean),
    *(Column(name, BigInteger) for name in ("recommendations", "liked", "shown", "scored", "scores")),
    Column("score_sum", Float),
    prefixes=["TEMPORARY"],
)


def sum_existing_log(engine: Engine) -> None:
    """On a database whose experiments predate the running sums, make the sums' tables and fill them."""
    if not _needs_sums(engine):
        return
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # writers wait; a second replica starting waits too
                connection.exec_driver_sql("LOCK TABLE recommendations, scores IN SHARE ROW EXCLUSIVE MODE")
            if not _needs_sums(connection):  # the other replica did it while this one waited
                return
            experiment_units.create(connection)
            experiment_arm_sums.create(connection)
            sum_log(connection)
    except DBAPIError:  # another process starting at the same time (SQLite) may have made them
        if _needs_sums(engine):
            raise


def _needs_sums(bind: Engine | Connection) -> bool:
    tables = set(inspect(bind).get_table_names())
    return experiments.name in tables and experiment_arm_sums.name not in tables


def sum_log(connection: Connection) -> None:
    """Sum every experiment's recommendations and scores into the (empty) sums' tables, each arm in shard 0."""
    per_unit.create(connection)
    connection.execute(insert(per_unit).from_select([column.name for column in per_unit.c], _per_unit_query()))
    unit_columns = [column.name for column in experiment_units.c]
    clients = select(*(per_unit.c[name] for name in unit_columns)).where(per_unit.c.is_client)
    connection.execute(insert(experiment_units).from_select(unit_columns, clients))
    x, y = per_unit.c.liked, per_unit.c.recommendations
    per_arm = select(
        per_unit.c.experiment_id,
        per_unit.c.arm,
        cast(0, Integer),
        func.count(),
        func.sum(x),
        func.sum(x * x),
        func.sum(y),
        func.sum(y * y),
        func.sum(x * y),
        func.sum(per_unit.c.shown),
        func.sum(per_unit.c.scored),
        func.sum(case((per_unit.c.scored > 0, 1), else_=0)),
        func.sum(per_unit.c.scores),
        func.sum(per_unit.c.score_sum),
    ).group_by(per_unit.c.experiment_id, per_unit.c.arm)
    connection.execute(insert(experiment_arm_sums).from_select(["experiment_id", "arm", "shard", *SUMS], per_arm))
    per_unit.drop(connection)


def _per_unit_query() -> Select:
    """Each unit's recommendations, liked titles, titles shown, recommendations scored, scores and their sum."""
    liked = func.sum(case((scores.c.score >= LIKED_SCORE, 1), else_=0))
    per_recommendation = (
        select(
            scores.c.recommendation_id, func.count().label("scores"), func.sum(scores.c.score).label("score_sum"),
            liked.label("liked"),
        )
        .group_by(scores.c.recommendation_id)
        .subquery()
    )  # fmt: skip
    unit = func.coalesce(recommendations.c.client, recommendations.c.id)
    is_client = recommendations.c.client.is_not(None)
    scored = per_recommendation.c.scores.is_not(None)
    return (
        select(
            recommendations.c.experiment_id,
            recommendations.c.arm,
            unit,
            is_client,
            func.count(),
            func.coalesce(func.sum(per_recommendation.c.liked), 0),
            func.sum(func.json_array_length(recommendations.c.titles)),
            func.sum(case((scored, 1), else_=0)),
            func.coalesce(func.sum(per_recommendation.c.scores), 0),
            func.coalesce(func.sum(per_recommendation.c.score_sum), 0.0),
        )
        .select_from(
            recommendations.outerjoin(
                per_recommendation, per_recommendation.c.recommendation_id == recommendations.c.id
            )
        )
        .where(recommendations.c.experiment_id.is_not(None))
        .group_by(recommendations.c.experiment_id, recommendations.c.arm, unit, is_client)
    )
