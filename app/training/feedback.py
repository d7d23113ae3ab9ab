"""Scores recorded by the service, as training data (no Flask).

Each recommendation whose titles were scored becomes one more user, with the
demographics of its request and a rating (the score) for each title scored.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import make_url, select

from app.model.data import Dataset
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


def with_feedback(dataset: Dataset, feedback: pd.DataFrame, *, weight: int = 1) -> Dataset:
    """The dataset plus one user per scored recommendation, repeated weight times."""
    title_to_id = pd.Series(dataset.movies.index, index=dataset.movies["title"])
    known = feedback[feedback["movie"].isin(title_to_id.index)]
    # Gender O is served as the mean of M and F, so its scores teach both.
    other = known[known["gender"] == "O"]
    known = pd.concat(
        [known[known["gender"] != "O"]]
        + [other.assign(gender=gender, recommendation_id=other["recommendation_id"] + f":{gender}") for gender in "MF"]
    )
    requests = known.drop_duplicates("recommendation_id")[["recommendation_id", "age", "gender", "occupation"]]
    users, ratings = [], []
    for copy in range(weight):
        user_ids = FEEDBACK_USER_OFFSET + copy * len(requests) + pd.RangeIndex(len(requests))
        id_of_request = pd.Series(user_ids, index=requests["recommendation_id"].to_numpy())
        users.append(requests.assign(user_id=user_ids.to_numpy()).set_index("user_id")[["age", "gender", "occupation"]])
        ratings.append(
            pd.DataFrame(
                {
                    "user_id": known["recommendation_id"].map(id_of_request).to_numpy(),
                    "movie_id": known["movie"].map(title_to_id).to_numpy(),
                    "rating": known["score"].to_numpy(dtype=float),
                    "timestamp": pd.to_datetime(known["scored_at"]).astype("int64").to_numpy() // 10**9,
                }
            )
        )
    if not users:
        return dataset
    return Dataset(
        users=pd.concat([dataset.users, *users]),
        movies=dataset.movies,
        ratings=pd.concat([dataset.ratings, *ratings], ignore_index=True),
    )


def describe_source(database_url: str) -> str:
    """The database's URL without its password, for model.json."""
    return make_url(database_url).render_as_string(hide_password=True)
