"""The warm forest's own arithmetic (app.model.warm)."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np

from app.model.data import load_dataset
from app.model.forest import RelevanceForest
from app.model.recommender import MODEL_FILE_NAME
from app.model.session import session_features


def test_its_fast_prediction_is_the_forests_own(synthetic_model_dir: Path) -> None:
    model = joblib.load(synthetic_model_dir / MODEL_FILE_NAME)
    positions = np.array([0, 3, 8])
    scores = np.array([[5.0, 1.0, 3.0], [2.0, 0.0, 4.0]], dtype=np.float32)
    cold = model.pool_relevance_[[29, 60], [0, 2], [3, 20]].astype(np.float32)
    rows = session_features(scores, model.warm_.neighbours_.rows(positions), cold)
    expected = model.warm_.forest_.predict(rows).reshape(cold.shape)
    assert np.array_equal(model.warm_.relevance(positions, scores, cold), expected)


def test_warm_start_leaves_the_cold_forest_as_it_was(synthetic_data_dir: Path) -> None:
    """The out-of-bag relevance that the warm forest learns from does not change the cold trees."""
    dataset = load_dataset(synthetic_data_dir)
    cold_only = RelevanceForest(random_state=4, warm_start=False).fit(dataset)
    with_warm = RelevanceForest(random_state=4).fit(dataset)
    assert np.array_equal(cold_only.rankings_, with_warm.rankings_)
    assert not hasattr(cold_only, "warm_") and hasattr(with_warm, "warm_")
