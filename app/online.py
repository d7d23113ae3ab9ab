"""The online view: how each model version's recommendations were scored (no Flask)."""

from __future__ import annotations

import itertools

import pandas as pd
from sqlalchemy import select

from app.data import RELEVANT_RATING
from app.features import AGE_BUCKET_STARTS, age_buckets
from app.store import make_engine, recommendations, scores

# A segment is shown once it has this many scores: fewer say little.
MIN_SEGMENT_SCORES = 20
BUCKET_NAMES = [
    "<18",
    *(f"{start}-{end - 1}" for start, end in itertools.pairwise(AGE_BUCKET_STARTS)),
    f"{AGE_BUCKET_STARTS[-1]}+",
]


def read_log(database_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            served = pd.DataFrame(
                connection.execute(select(recommendations.c.id, recommendations.c.model_version,
                                          recommendations.c.age, recommendations.c.gender,
                                          recommendations.c.occupation)).mappings().all(),
                columns=["id", "model_version", "age", "gender", "occupation"],
            )  # fmt: skip
            scored = pd.DataFrame(
                connection.execute(select(scores.c.recommendation_id, scores.c.score)).mappings().all(),
                columns=["recommendation_id", "score"],
            )
    finally:
        engine.dispose()
    return served, scored


def summarise_online(served: pd.DataFrame, scored: pd.DataFrame) -> dict:
    """Per model version: served, scored, mean score, share of 4 and 5; and per segment with enough scores."""
    joined = scored.merge(served, left_on="recommendation_id", right_on="id")
    joined = joined.assign(
        positive=joined["score"] >= RELEVANT_RATING,
        segment=joined["gender"] + " " + [BUCKET_NAMES[b] for b in age_buckets(joined["age"].to_numpy())]
        + " " + joined["occupation"],
    )  # fmt: skip
    versions = {}
    for version, requests in served.groupby("model_version"):
        mine = joined[joined["model_version"] == version]
        segments = mine.groupby("segment").agg(scores=("score", "size"), mean_score=("score", "mean"),
                                               share_4_or_5=("positive", "mean"))  # fmt: skip
        versions[version] = {
            "recommendations_served": len(requests),
            "recommendations_scored": int(mine["recommendation_id"].nunique()),
            "scores": len(mine),
            "mean_score": float(mine["score"].mean()) if len(mine) else None,
            "share_4_or_5": float(mine["positive"].mean()) if len(mine) else None,
            "segments": segments[segments["scores"] >= MIN_SEGMENT_SCORES].round(4).to_dict("index"),
        }
    return versions
