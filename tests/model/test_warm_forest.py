"""The warm forest's own arithmetic (app.model.warm)."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np

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
