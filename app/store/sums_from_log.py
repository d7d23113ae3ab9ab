"""The experiments' running sums (experiment_sums.py) made in bulk from the log, by the same rules, in SQL.

Done once, when a database made before the running sums is first used by this version (create_tables):
its experiments, the one running too, are summed from the log in the transaction that makes the sums'
tables, holding a lock that keeps writers out until it commits, so that no row is missed or counted twice.
From then on every row is counted as it is stored. The one scan of the log there is; tests and benchmarks
use it too, to sum a log loaded in bulk.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, Integer, case, cast, func, insert, inspect, select
from sqlalchemy.exc import DBAPIError

from app.store.experiment_sums import LIKED_SCORE, SUMS
from app.store.tables import experiment_arm_sums, experiment_units, experiments, recommendations, scores


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
    scored = per_recommendation.c.scores.is_not(None)
    per_unit = (
        select(
            recommendations.c.experiment_id,
            recommendations.c.arm,
            unit.label("unit"),
            func.count().label("recommendations"),
            func.coalesce(func.sum(per_recommendation.c.liked), 0).label("liked"),
            func.sum(func.json_array_length(recommendations.c.titles)).label("shown"),
            func.sum(case((scored, 1), else_=0)).label("scored"),
            func.coalesce(func.sum(per_recommendation.c.scores), 0).label("scores"),
            func.coalesce(func.sum(per_recommendation.c.score_sum), 0.0).label("score_sum"),
        )
        .select_from(
            recommendations.outerjoin(
                per_recommendation, per_recommendation.c.recommendation_id == recommendations.c.id
            )
        )
        .where(recommendations.c.experiment_id.is_not(None))
        .group_by(recommendations.c.experiment_id, recommendations.c.arm, unit)
    )
    units = per_unit.subquery()
    unit_columns = ["experiment_id", "arm", "unit", "recommendations", "liked"]
    connection.execute(
        insert(experiment_units).from_select(unit_columns, select(*(units.c[name] for name in unit_columns)))
    )
    x, y = units.c.liked, units.c.recommendations
    per_arm = select(
        units.c.experiment_id,
        units.c.arm,
        cast(0, Integer),
        func.count(),
        func.sum(x),
        func.sum(x * x),
        func.sum(y),
        func.sum(y * y),
        func.sum(x * y),
        func.sum(units.c.shown),
        func.sum(units.c.scored),
        func.sum(units.c.scores),
        func.sum(units.c.score_sum),
    ).group_by(units.c.experiment_id, units.c.arm)
    connection.execute(insert(experiment_arm_sums).from_select(["experiment_id", "arm", "shard", *SUMS], per_arm))
