from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from app.model.data import sha256_of
from app.model.features import feature_names
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.training.train import TEST_DATA_FILE_NAME, train


def test_training_writes_the_model_its_metadata_and_test_data(synthetic_model_dir: Path) -> None:
    assert sorted(path.name for path in synthetic_model_dir.iterdir()) == sorted(
        [MODEL_FILE_NAME, METADATA_FILE_NAME, TEST_DATA_FILE_NAME]
    )


def test_metadata_records_the_model_checksum_data_and_settings(
    synthetic_model_dir: Path, synthetic_data_dir: Path
) -> None:
    metadata = json.loads((synthetic_model_dir / METADATA_FILE_NAME).read_text())
    assert metadata["model_sha256"] == sha256_of(synthetic_model_dir / MODEL_FILE_NAME)
    assert metadata["training_files_sha256"]["u.data"] == sha256_of(synthetic_data_dir / "u.data")
    assert metadata["features"] == feature_names()
    assert {"scikit-learn", "numpy", "python"} <= metadata["libraries"].keys()
    assert metadata["hyper_parameters"]["min_samples_leaf"] == 200
    assert metadata["metrics"]["test_rows"] > 0
    assert metadata["reasons"]["min_raters"] == 20 and metadata["reasons"]["distinct"] > 0


def test_test_data_holds_rows_of_users_kept_out_of_training(synthetic_model_dir: Path) -> None:
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    model = joblib.load(synthetic_model_dir / MODEL_FILE_NAME)
    assert len(test_data["data"]) == len(test_data["target"])
    assert set(test_data["target"]) <= {0.0, 1.0}
    assert model.score(test_data["data"], test_data["target"]) == pytest.approx(test_data["expected_score"])


def test_training_twice_with_one_seed_writes_the_same_model(synthetic_data_dir: Path, tmp_path: Path) -> None:
    train(synthetic_data_dir, tmp_path / "first", seed=5)
    train(synthetic_data_dir, tmp_path / "second", seed=5)
    assert sha256_of(tmp_path / "first" / MODEL_FILE_NAME) == sha256_of(tmp_path / "second" / MODEL_FILE_NAME)


def test_training_leaves_no_temporary_files(synthetic_data_dir: Path, tmp_path: Path) -> None:
    train(synthetic_data_dir, tmp_path, seed=2)
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_train_command_reports_a_missing_data_set_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.train", "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "model")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path} has no u.data, u.item, u.user: run 'python -m app.data fetch' or set ML100K_DIR"
    ]
    assert not (tmp_path / "model").exists()
