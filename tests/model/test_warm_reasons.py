"""Reasons from the person's own scores (app.model.warm_reasons), recounted from the raw ml-100k files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.model.data import GENDERS, OCCUPATIONS
from app.model.reasons import MIN_RATERS
from app.model.recommender import Recommender
from tests.model.test_reasons import genres_by_title, recommender, training_ratings  # noqa: F401 (fixtures)

FROM_SCORES = "people who gave "


def expected_reason(liked_by: pd.Series, everyone: int, rated: dict[str, float], title: str) -> tuple | None:
    """(share, liked title, its likers) of the liked title that makes this one likeliest, as the raw files count
    it (liked_by: the users who gave each title 4 or 5, of everyone); None when no liked title makes it likelier
    than among everyone."""
    best = None, len(liked_by.get(title, set())) / everyone
    for given, score in rated.items():
        likers = liked_by.get(given, set())
        if score < 4 or len(likers) < MIN_RATERS:
            continue
        share = len(likers & liked_by.get(title, set())) / len(likers)
        if share > best[1]:
            best = (given, len(likers)), share
    return None if best[0] is None else (best[1], *best[0])


@pytest.mark.dataset
def test_a_title_chosen_for_the_persons_scores_says_so_with_exact_counts(
    recommender: Recommender,  # noqa: F811
    training_ratings: pd.DataFrame,  # noqa: F811
    genres_by_title: dict,  # noqa: F811
) -> None:
    rng = np.random.RandomState(11)
    liked_by = training_ratings[training_ratings["rating"] >= 4].groupby("title")["user"].agg(set)
    everyone = training_ratings["user"].nunique()
    titles = sorted(training_ratings["title"].value_counts().index[:400])
    cited = 0
    for _ in range(12):
        person = (int(rng.randint(1, 121)), str(rng.choice(GENDERS)), str(rng.choice(OCCUPATIONS)))
        picked = rng.choice(titles, size=rng.randint(1, 8), replace=False)
        rated = {str(title): float(rng.randint(1, 6)) for title in picked}
        answer = recommender.recommend(*person, 20, rated=rated)
        for title, reason in zip(answer, recommender.reasons(*person, 20, rated=rated), strict=True):
            expected = expected_reason(liked_by, everyone, rated, title)
            if expected is None:
                assert not reason["segment"].startswith(FROM_SCORES), (person, rated, title)
                continue
            share, given, likers = expected
            assert reason == {
                "text": f"You gave {rated[given]:g} to {given}: {share:.0%} of the {likers} people who gave it 4 or "
                "5 also gave this 4 or 5.",
                "segment": f"{FROM_SCORES}{given} 4 or 5",
                "raters": likers,
                "positive_share": round(share, 4),
                "genres": genres_by_title[title],
                "year": reason["year"],
            }, (person, rated, title)
            assert str(reason["year"]) in title
            cited += 1
    assert cited > 20, "the sample should reach titles chosen for the person's scores"
