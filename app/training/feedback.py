"""Scores recorded by the service, as training data (no Flask).

Each recommendation whose titles were scored becomes one more person, with the
demographics of its request (gender O included) and a rating (the score) for
each title scored: with_feedback. Reasons count those people once each.
The forest learns from rows_for_the_forest: each of them weight times, and a
person of gender O as a man and as a woman, since it knows only those two.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import make_url, select

from app.model.data import Dataset
from app.model.features import MODEL_GENDERS
from app.store.recommendation_log import make_engine, recommendations, scores

# Ids for the users that feedback adds, far above ml-100k's (1-943).
FEEDBACK_USER_OFFSET = 1_000_000


def read_feedback(database_url: str) -> pd.DataFrame:
    """One row per (recommendation, movie) scored, with its latest score and the request's demographics."""
    query = select(
        scores.c.recommendation_id,
        scores.c.movie,
        scores.c.score,
        scores.c.scored_at,
        recommendations.c.age,
        recommendations.c.gender,
        recommendations.c.occupation,
    ).join(recommendations, recommendations.c.id == scores.c.recommendation_id)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).mappings().all(), columns=list(query.selected_columns.keys()))
    finally:
        engine.dispose()


def with_feedback(dataset: Dataset, feedback: pd.DataFrame) -> Dataset:
    """The dataset plus one user per scored recommendation, as its request gave them (gender O stays O)."""
    title_to_id = pd.Series(dataset.movies.index, index=dataset.movies["title"])
    known = feedback[feedback["movie"].isin(title_to_id.index)]
    if known.empty:
        return dataset
    requests = known.drop_duplicates("recommendation_id")[["recommendation_id", "age", "gender", "occupation"]]
    user_ids = pd.Index(FEEDBACK_USER_OFFSET + np.arange(len(requests)), name=dataset.users.index.name)
    id_of_request = pd.Series(user_ids, index=requests["recommendation_id"].to_numpy())
    ratings = pd.DataFrame(
        {
            "user_id": known["recommendation_id"].map(id_of_request).to_numpy(),
            "movie_id": known["movie"].map(title_to_id).to_numpy(),
            "rating": known["score"].to_numpy(dtype=float),
            "timestamp": pd.to_datetime(known["scored_at"]).astype("int64").to_numpy() // 10**9,
        }
    )
    return Dataset(
        users=pd.concat([dataset.users, requests.set_index(user_ids)[["age", "gender", "occupation"]]]),
        movies=dataset.movies,
        ratings=pd.concat([dataset.ratings, ratings], ignore_index=True),
    )


def rows_for_the_forest(dataset: Dataset, *, weight: int = 1) -> Dataset:
    """with_feedback's dataset as the forest learns from it: each feedback user repeated weight times, under new
    ids, and one of gender O as a man and as a woman (it serves O as the mean of both, so O's scores teach both)."""
    added = dataset.users.index >= FEEDBACK_USER_OFFSET
    people = dataset.users[added]
    other = people["gender"] == "O"
    variants = [people[~other], *(people[other].assign(gender=gender) for gender in MODEL_GENDERS)]
    copies = pd.concat(variants * weight)  # indexed by the person each copy stands for
    copy_ids = FEEDBACK_USER_OFFSET + np.arange(len(copies))
    feedback_ratings = dataset.ratings[dataset.ratings["user_id"] >= FEEDBACK_USER_OFFSET]
    copy_of = pd.DataFrame({"user_id": copies.index.to_numpy(), "copy_id": copy_ids})
    copied_ratings = feedback_ratings.merge(copy_of, on="user_id").drop(columns="user_id")
    copied_ratings = copied_ratings.rename(columns={"copy_id": "user_id"})[list(dataset.ratings.columns)]
    return Dataset(
        users=pd.concat([dataset.users[~added], copies.set_axis(pd.Index(copy_ids, name=dataset.users.index.name))]),
        movies=dataset.movies,
        ratings=pd.concat(
            [dataset.ratings[dataset.ratings["user_id"] < FEEDBACK_USER_OFFSET], copied_ratings], ignore_index=True
        ),
    )


def describe_source(database_url: str) -> str:
    """The database's URL without its password, for model.json."""
    return make_url(database_url).render_as_string(hide_password=True)
