"""The online view: how each model version's recommendations were scored (no Flask)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from app.model.data import RELEVANT_RATING
from app.model.features import AGE_BUCKET_NAMES, age_buckets
from app.store.recommendation_log import make_engine, recommendations, scores

# A segment is shown once it has this many scores: fewer say little.
MIN_SEGMENT_SCORES = 20


def read_log(database_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            served = pd.DataFrame(
                connection.execute(select(recommendations.c.id, recommendations.c.model_version,
                                          recommendations.c.age, recommendations.c.gender,
                                          recommendations.c.occupation, recommendations.c.explain)).mappings().all(),
                columns=["id", "model_version", "age", "gender", "occupation", "explain"],
            )  # fmt: skip
            scored = pd.DataFrame(
                connection.execute(select(scores.c.recommendation_id, scores.c.score)).mappings().all(),
                columns=["recommendation_id", "score"],
            )
    finally:
        engine.dispose()
    return served, scored


def summarise_online(served: pd.DataFrame, scored: pd.DataFrame) -> dict:
    """Per model version: served, scored, mean score, share of 4 and 5; the same for answers given with reasons
    and without (who asked differs: the page always asks, API clients choose; so no effect of reasons can be
    read from it); and per segment with enough scores."""
    joined = scored.merge(served, left_on="recommendation_id", right_on="id")
    joined = joined.assign(
        positive=joined["score"] >= RELEVANT_RATING,
        segment=joined["gender"] + " " + [AGE_BUCKET_NAMES[b] for b in age_buckets(joined["age"].to_numpy())]
        + " " + joined["occupation"],
    )  # fmt: skip
    versions = {}
    for version, requests in served.groupby("model_version"):
        mine = joined[joined["model_version"] == version]
        segments = mine.groupby("segment").agg(scores=("score", "size"), mean_score=("score", "mean"),
                                               share_4_or_5=("positive", "mean"))  # fmt: skip
        versions[version] = {
            **_figures(requests, mine),
            "reasons": {
                shown: _figures(requests[requests["explain"] == explain], mine[mine["explain"] == explain])
                for shown, explain in (("shown", True), ("not shown", False))
            },
            "segments": segments[segments["scores"] >= MIN_SEGMENT_SCORES].round(4).to_dict("index"),
        }
    return versions


def _figures(served: pd.DataFrame, scored: pd.DataFrame) -> dict:
    return {
        "recommendations_served": len(served),
        "recommendations_scored": int(scored["recommendation_id"].nunique()),
        "scores": len(scored),
        "mean_score": float(scored["score"].mean()) if len(scored) else None,
        "share_4_or_5": float(scored["positive"].mean()) if len(scored) else None,
    }
