"""For the benchmark only: the product's route with the ranking step replaced by a fixed list."""

from __future__ import annotations

from collections.abc import Mapping

from app.model.recommender import Recommender
from main import app


class FixedList(Recommender):
    def recommend(
        self, age: int, gender: str, occupation: str, max_recs: int = 10, rated: Mapping[str, float] | None = None
    ) -> list[str]:
        return self.estimator.titles_[:max_recs].tolist()


arms = app.extensions["arms"]
arms.control = FixedList(arms.control.estimator, arms.control.version, arms.control.metadata)
