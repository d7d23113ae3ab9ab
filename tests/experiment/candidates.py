"""Candidate models for experiments' tests, made from a trained one."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import joblib

from app.model.data import sha256_of
from app.model.forest import RelevanceForest
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.training.train import TEST_DATA_FILE_NAME

# What a model made before warm start (issue 27) lacks: the warm forest and what it reads.
WARM_START_ATTRIBUTES = ("warm_", "pool_relevance_", "co_likes_")


def reversed_candidate(model_dir: Path, out_dir: Path) -> Path:
    """The model with every person's ranking reversed (its forest, and so its R^2, unchanged): a candidate that
    people like far less, which only the ranking gate refuses. Its model.pkl's path."""
    estimator = joblib.load(model_dir / MODEL_FILE_NAME)
    estimator.rankings_ = estimator.rankings_[..., ::-1].copy()
    return _written(estimator, model_dir, out_dir)


def cold_twin(model_dir: Path, out_dir: Path) -> Path:
    """The model as if made before warm start: the same cold lists, and rated ignored (its titles still left out).
    Its model.pkl's path."""
    estimator = joblib.load(model_dir / MODEL_FILE_NAME)
    without_warm_start(estimator)
    return _written(estimator, model_dir, out_dir)


def without_warm_start(estimator: RelevanceForest) -> None:
    for attribute in WARM_START_ATTRIBUTES:
        delattr(estimator, attribute)


def _written(estimator: RelevanceForest, model_dir: Path, out_dir: Path) -> Path:
    """estimator as out_dir/model.pkl, with model_dir's model.json (its SHA-256 made right) and test_data.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    (out_dir / MODEL_FILE_NAME).write_bytes(buffer.getvalue())
    metadata = json.loads((model_dir / METADATA_FILE_NAME).read_text())
    metadata["model_sha256"] = sha256_of(out_dir / MODEL_FILE_NAME)
    (out_dir / METADATA_FILE_NAME).write_text(json.dumps(metadata))
    shutil.copy(model_dir / TEST_DATA_FILE_NAME, out_dir / TEST_DATA_FILE_NAME)
    return out_dir / MODEL_FILE_NAME
