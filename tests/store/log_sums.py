"""An experiment's sums recomputed from the raw rows by another route: pandas over the two tables of the log."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from app.model.data import RELEVANT_RATING
from app.store.tables import recommendations, scores


def sums_by_pandas(engine: Engine, experiment_id: int) -> dict[str, dict[str, float]]:
    """Each arm's sums, as app.store.experiment_sums.arm_sums gives them, from every row of the log."""
    with engine.connect() as connection:
        logged = pd.DataFrame(connection.execute(select(recommendations)).mappings().all())
        given = pd.DataFrame(connection.execute(select(scores)).mappings().all(), columns=[c.name for c in scores.c])
    logged = logged[logged["experiment_id"] == experiment_id]
    per_recommendation = given.assign(liked=given["score"] >= RELEVANT_RATING).groupby("recommendation_id")
    counted = per_recommendation.agg(scores=("score", "size"), score_sum=("score", "sum"), liked=("liked", "sum"))
    rows = logged.join(counted, on="id").fillna({"scores": 0, "score_sum": 0.0, "liked": 0})
    rows = rows.assign(unit=rows["client"].fillna(rows["id"]), shown=rows["titles"].map(len), scored=rows["scores"] > 0)
    per_unit = rows.groupby(["arm", "unit"]).agg(
        y=("id", "size"), x=("liked", "sum"), shown=("shown", "sum"), scored=("scored", "sum"),
        scores=("scores", "sum"), score_sum=("score_sum", "sum"),
    )  # fmt: skip
    found = {}
    for arm, units in per_unit.groupby(level="arm"):
        x, y = units["x"], units["y"]
        found[arm] = {
            "units": len(units),
            "liked": x.sum(),
            "liked_squares": (x * x).sum(),
            "recommendations": y.sum(),
            "recommendation_squares": (y * y).sum(),
            "liked_times_recommendations": (x * y).sum(),
            "shown": units["shown"].sum(),
            "scored": units["scored"].sum(),
            "scored_units": (units["scored"] > 0).sum(),
            "scores": units["scores"].sum(),
            "score_sum": units["score_sum"].sum(),
        }
    return {arm: {name: float(value) for name, value in sums.items()} for arm, sums in found.items()}
