"""For the benchmark only: the original design's path, the forest's predict over every movie per request."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from app.model.recommender import Recommender
from main import app


class PredictPerRequest(Recommender):
    def recommend(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> list[str]:
        model = self.estimator
        movie_ids = model.movie_ids_[model.pool_]
        scores = model.predict([[age, gender, occupation, int(movie_id)] for movie_id in movie_ids])
        best = model.pool_[np.argsort(-scores, kind="stable")[:max_recs]]
        return model.titles_[best].tolist()


arms = app.extensions["arms"]
arms.control = PredictPerRequest(arms.control.estimator, arms.control.version, arms.control.metadata)
