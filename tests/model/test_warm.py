"""Warm start through the Python API: the scores a person gave change their next list (app.model.warm)."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest

from app.model.recommender import MODEL_FILE_NAME, Recommender
from tests.experiment.candidates import without_warm_start
from tests.model.test_reasons import recommender  # noqa: F401 (the real model's, a fixture)

PERSON = (30, "M", "programmer")


@pytest.mark.dataset
def test_the_scores_change_the_list_and_no_rated_title_comes_back(recommender: Recommender) -> None:  # noqa: F811
    cold = recommender.recommend(*PERSON, 100)
    rated = {title: 5.0 for title in cold[:3]}
    warm = recommender.recommend(*PERSON, 100, rated=rated)
    assert len(warm) == len(set(warm)) == 100
    assert not set(warm) & set(rated)
    assert warm[:10] != [title for title in cold if title not in rated][:10]


@pytest.mark.dataset
def test_the_scores_value_counts(recommender: Recommender) -> None:  # noqa: F811
    titles = ["Empire Strikes Back, The (1980)", "Pulp Fiction (1994)", "Toy Story (1995)"]
    loved = recommender.recommend(*PERSON, rated=dict.fromkeys(titles, 5.0))
    hated = recommender.recommend(*PERSON, rated=dict.fromkeys(titles, 1.0))
    assert loved != hated


@pytest.mark.dataset
def test_a_title_outside_the_catalogue_is_refused(recommender: Recommender) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="'Heat' is not a title of the catalogue"):
        recommender.recommend(*PERSON, rated={"Heat": 4.0})


def test_a_model_made_before_warm_start_ignores_the_scores_but_drops_their_titles(
    synthetic_model_dir: Path, tmp_path: Path
) -> None:
    model = joblib.load(synthetic_model_dir / MODEL_FILE_NAME)
    without_warm_start(model)
    joblib.dump(model, tmp_path / MODEL_FILE_NAME)
    old = Recommender.load(tmp_path / MODEL_FILE_NAME)
    assert not old.warm_start
    cold = old.recommend(*PERSON, 100)
    rated = {cold[0]: 5.0, cold[4]: 1.0}
    assert old.recommend(*PERSON, 100, rated=rated) == [title for title in cold if title not in rated]
    reasons = dict(zip(cold, old.reasons(*PERSON, 100), strict=True))
    assert old.reasons(*PERSON, 100, rated=rated) == [reasons[title] for title in cold if title not in rated]
