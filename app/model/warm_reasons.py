"""Why a title, for a person who has scored some: the people who liked what they liked (no Flask).

A title is said to be chosen because of the person's scores when, among the people the model learnt from who
gave one of the titles the person scored 4 or 5 (at least MIN_RATERS of them), a larger share also gave this
title 4 or 5 than among everyone: "You gave 5 to Star Wars (1977): 71% of the 212 people who gave it 4 or 5
also gave this 4 or 5." Of the person's liked titles, the one with the largest such share is cited. The counts
are exact, each person once. Otherwise the title keeps its reason from people like the person (app.reasons).
"""

from __future__ import annotations

import numpy as np

from app.model.data import GENRES, RELEVANT_RATING, Dataset
from app.model.features import rating_matrices
from app.model.reasons import MIN_RATERS, title_year


class CoLikes:
    """For every catalogue movie and pool movie: how many people gave both 4 or 5; and how many gave each."""

    def __init__(self, dataset: Dataset, pool: np.ndarray) -> None:
        _, positive = rating_matrices(dataset.users.index, dataset.movies.index, dataset.ratings)
        self.both = (positive.T @ positive[:, pool]).round().astype(np.int32)  # catalogue x pool
        self.likers = positive.sum(axis=0).round().astype(np.int32)  # catalogue
        self.people = len(dataset.users)
        self.pool = pool
        movies = dataset.movies.iloc[pool]
        self.genres = [[name for name in GENRES if row[name]] for _, row in movies[list(GENRES)].iterrows()]
        self.years = [title_year(title) for title in movies["title"]]

    def reason(self, pool_index: int, liked: list[tuple[int, float, str]]) -> dict | None:
        """The reason citing one of liked's (catalogue position, score, title) for this pool movie, or None when
        none of them makes it likelier to be liked than among everyone."""
        base = self.likers[self.pool[pool_index]] / self.people
        best, best_share = None, base
        for position, score, title in liked:
            likers = int(self.likers[position])
            if likers < MIN_RATERS:
                continue
            share = self.both[position, pool_index] / likers
            if share > best_share:
                best, best_share = (score, title, likers), share
        if best is None:
            return None
        score, title, likers = best
        return {
            "text": f"You gave {score:g} to {title}: {best_share:.0%} of the {likers} people who gave it "
            f"{RELEVANT_RATING} or 5 also gave this {RELEVANT_RATING} or 5.",
            "segment": f"people who gave {title} {RELEVANT_RATING} or 5",
            "raters": likers,
            "positive_share": round(float(best_share), 4),
            "genres": self.genres[pool_index],
            "year": self.years[pool_index],
        }
