"""An experiment's recommendations and scores, read from the log and added up per unit and arm.

A unit is the request's client key, else the recommendation itself. For each unit: its recommendations,
those with at least one score, its scores, their sum, and its liked titles (scored 4 or 5). An unscored
title counts as not liked. Every recommendation counts from the moment it is answered, whether or not its
scores have come yet: both arms are read at the same moment, so late scores weigh on them alike.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, case, func, select

from app.experiment.analysis import Arm
from app.experiment.arms import CANDIDATE, CONTROL
from app.model.data import RELEVANT_RATING
from app.store.tables import recommendations, scores


def units_by_arm(engine: Engine, experiment_id: int) -> dict[str, Arm]:
    per_recommendation = (
        select(
            scores.c.recommendation_id,
            func.count().label("scores"),
            func.sum(scores.c.score).label("score_sum"),
            func.sum(case((scores.c.score >= RELEVANT_RATING, 1), else_=0)).label("liked"),
        )
        .group_by(scores.c.recommendation_id)
        .subquery()
    )
    query = (
        select(
            recommendations.c.id,
            recommendations.c.client,
            recommendations.c.arm,
            recommendations.c.titles,
            func.coalesce(per_recommendation.c.scores, 0),
            func.coalesce(per_recommendation.c.score_sum, 0.0),
            func.coalesce(per_recommendation.c.liked, 0),
        )
        .select_from(
            recommendations.outerjoin(
                per_recommendation, per_recommendation.c.recommendation_id == recommendations.c.id
            )
        )
        .where(recommendations.c.experiment_id == experiment_id)
    )
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(query).all(),
            columns=["id", "client", "arm", "titles", "scores", "score_sum", "liked"],
        )
    rows = rows.assign(unit=rows["client"].fillna(rows["id"]), scored=rows["scores"] > 0, shown=rows["titles"].map(len))
    per_unit = rows.groupby(["arm", "unit"]).agg(
        recommendations=("id", "size"),
        scored=("scored", "sum"),
        scores=("scores", "sum"),
        score_sum=("score_sum", "sum"),
        liked=("liked", "sum"),
        shown=("shown", "sum"),
    )
    arms = set(per_unit.index.get_level_values("arm"))
    return {arm: _units(per_unit.loc[arm] if arm in arms else per_unit.iloc[:0]) for arm in (CONTROL, CANDIDATE)}


def _units(table: pd.DataFrame) -> Arm:
    columns = ("liked", "recommendations", "shown", "scored", "scores", "score_sum")
    return Arm.from_units(**{column: table[column].to_numpy(dtype=float) for column in columns})
