"""An experiment's recommendations and scores, read from the log and added up per unit and arm.

A unit is the request's client key, else the recommendation itself. For each unit: its recommendations,
those with at least one score, its scores, their sum, and its liked titles (scored 4 or 5). An unscored
title counts as not liked. Every recommendation counts from the moment it is answered, whether or not its
scores have come yet: both arms are read at the same moment, so late scores weigh on them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, case, func, select

from app.experiment.arms import CANDIDATE, CONTROL
from app.model.data import RELEVANT_RATING
from app.store.tables import recommendations, scores


@dataclass(frozen=True)
class Units:
    """One arm's units, as arrays of one entry per unit."""

    recommendations: np.ndarray
    scored: np.ndarray
    scores: np.ndarray
    score_sum: np.ndarray
    liked: np.ndarray


def units_by_arm(engine: Engine, experiment_id: int) -> dict[str, Units]:
    liked = func.sum(case((scores.c.score >= RELEVANT_RATING, 1), else_=0))
    query = (
        select(
            recommendations.c.id,
            recommendations.c.client,
            recommendations.c.arm,
            func.count(scores.c.score).label("scores"),
            func.coalesce(func.sum(scores.c.score), 0.0).label("score_sum"),
            func.coalesce(liked, 0).label("liked"),
        )
        .select_from(recommendations.outerjoin(scores, scores.c.recommendation_id == recommendations.c.id))
        .where(recommendations.c.experiment_id == experiment_id)
        .group_by(recommendations.c.id, recommendations.c.client, recommendations.c.arm)
    )
    with engine.connect() as connection:
        rows = pd.DataFrame(
            connection.execute(query).mappings().all(),
            columns=["id", "client", "arm", "scores", "score_sum", "liked"],
        )
    rows = rows.assign(unit=rows["client"].fillna(rows["id"]), scored=rows["scores"] > 0)
    per_unit = rows.groupby(["arm", "unit"]).agg(
        recommendations=("id", "size"),
        scored=("scored", "sum"),
        scores=("scores", "sum"),
        score_sum=("score_sum", "sum"),
        liked=("liked", "sum"),
    )
    arms = set(per_unit.index.get_level_values("arm"))
    return {arm: _units(per_unit.loc[arm] if arm in arms else per_unit.iloc[:0]) for arm in (CONTROL, CANDIDATE)}


def _units(table: pd.DataFrame) -> Units:
    return Units(*(table[field].to_numpy(dtype=float) for field in Units.__dataclass_fields__))
