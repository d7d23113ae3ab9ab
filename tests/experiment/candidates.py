"""Candidate models for experiments' tests, made from a trained one."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import joblib

from app.model.data import sha256_of
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.training.train import TEST_DATA_FILE_NAME


def reversed_candidate(model_dir: Path, out_dir: Path) -> Path:
    """The model with every person's ranking reversed (its forest, and so its R^2, unchanged): a candidate that
    people like far less, which only the ranking gate refuses. Its model.pkl's path."""
    estimator = joblib.load(model_dir / MODEL_FILE_NAME)
    estimator.rankings_ = estimator.rankings_[..., ::-1].copy()
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    (out_dir / MODEL_FILE_NAME).write_bytes(buffer.getvalue())
    metadata = json.loads((model_dir / METADATA_FILE_NAME).read_text())
    metadata["model_sha256"] = sha256_of(out_dir / MODEL_FILE_NAME)
    (out_dir / METADATA_FILE_NAME).write_text(json.dumps(metadata))
    shutil.copy(model_dir / TEST_DATA_FILE_NAME, out_dir / TEST_DATA_FILE_NAME)
    return out_dir / MODEL_FILE_NAME
