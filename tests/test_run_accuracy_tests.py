from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from app.model.data import Dataset
from app.model.forest import RelevanceForest
from app.model.recommender import MODEL_FILE_NAME
from app.training.train import TEST_DATA_FILE_NAME, train

SCRIPT = Path(__file__).parent / "run_accuracy_tests.py"
NO_USERS = '"ranking": {"k": 10, "users": [], "most_rated_4plus": []}}'
UNKNOWN_MOVIE = '{"data": [[30, "M", "writer", 999999]], "target": [1], "expected_score": 0.1, ' + NO_USERS


def run_check(*arguments: str | Path) -> subprocess.CompletedProcess:
    # From another directory, as the Docker build runs it: the script must find the app by itself.
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, arguments)], capture_output=True, text=True, cwd="/")


def test_a_model_on_its_own_test_data_passes(synthetic_model_dir: Path) -> None:
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("accuracy check passed")
    assert "ranking gate passed: NDCG@10" in result.stdout


def serving_the_popular_list(model_dir: Path, out_dir: Path) -> Path:
    """The trained model, its forest untouched (so its R^2 stays), but recommending the test data's "most rated 4+"
    list to everyone: the model that the gate must not let through."""
    model = joblib.load(model_dir / MODEL_FILE_NAME)
    popular = json.loads((model_dir / TEST_DATA_FILE_NAME).read_text())["ranking"]["most_rated_4plus"]
    positions = pd.Index(model.titles_).get_indexer(popular)
    rest = [position for position in model.rankings_[0, 0, 0] if position not in positions]
    model.rankings_[...] = np.concatenate([positions, rest])[: model.rankings_.shape[-1]]
    out_dir.mkdir()
    joblib.dump(model, out_dir / MODEL_FILE_NAME)
    return out_dir / MODEL_FILE_NAME


def test_a_model_serving_the_popular_list_to_everyone_fails_the_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    popular = serving_the_popular_list(synthetic_model_dir, tmp_path / "popular")
    result = run_check(popular, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert "accuracy check passed: R^2" in result.stdout
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("ranking gate FAILED: NDCG@10 ")
    assert line.endswith(": the model is no better than popularity")
    # It ties popularity exactly: the bootstrap of a zero difference is zero, not above it.
    assert "bootstrap 5th percentile of the difference +0.0000" in line


def test_a_model_that_ranks_below_popularity_fails_the_gate(synthetic_model_dir: Path, tmp_path: Path) -> None:
    """The same model against a popularity list that happens to be each held-out user's own likes."""
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    (user,) = [user for user in test_data["ranking"]["users"] if user["liked"]][:1]
    test_data["ranking"]["users"] = [user]
    test_data["ranking"]["most_rated_4plus"] = (user["liked"] * 10)[:10]
    (tmp_path / "popular.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "popular.json")
    assert result.returncode == 1
    assert "ranking gate FAILED: NDCG@10" in result.stderr


@pytest.mark.dataset
def test_the_gate_passes_the_real_model_and_fails_a_forest_trained_on_shuffled_targets(
    real_data_dir: Path, real_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = run_check(real_model_dir / MODEL_FILE_NAME, real_model_dir / TEST_DATA_FILE_NAME)
    assert real.returncode == 0, real.stderr
    assert "ranking gate passed" in real.stdout
    popular = run_check(
        serving_the_popular_list(real_model_dir, tmp_path / "popular"), real_model_dir / TEST_DATA_FILE_NAME
    )
    assert popular.returncode == 1
    assert "the model is no better than popularity" in popular.stderr
    fit = RelevanceForest.fit

    def fit_on_shuffled_targets(
        forest: RelevanceForest, training: Dataset, people: Dataset | None = None
    ) -> RelevanceForest:
        shuffled = np.random.RandomState(0).permutation(training.ratings["rating"].to_numpy())
        return fit(forest, Dataset(training.users, training.movies, training.ratings.assign(rating=shuffled)), people)

    monkeypatch.setattr(RelevanceForest, "fit", fit_on_shuffled_targets)
    train(real_data_dir, tmp_path, seed=1)
    poor = run_check(tmp_path / MODEL_FILE_NAME, tmp_path / TEST_DATA_FILE_NAME)
    # Made together, the poor model and its test file pass the R^2 check: the gate is what stops it.
    assert "accuracy check passed: R^2" in poor.stdout
    assert poor.returncode == 1
    assert "ranking gate FAILED" in poor.stderr, poor.stdout + poor.stderr


def test_a_score_below_the_expected_one_fails(synthetic_model_dir: Path, tmp_path: Path) -> None:
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    test_data["expected_score"] += 0.01
    (tmp_path / "harder.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "harder.json")
    assert result.returncode == 1
    assert "accuracy check FAILED: R^2" in result.stderr


def test_the_tolerance_admits_a_slightly_lower_score(synthetic_model_dir: Path, tmp_path: Path) -> None:
    test_data = json.loads((synthetic_model_dir / TEST_DATA_FILE_NAME).read_text())
    test_data["expected_score"] += 0.001
    (tmp_path / "harder.json").write_text(json.dumps(test_data))
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, tmp_path / "harder.json", "--error-tolerance", "0.01")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("test_data", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "must be an object with data, target and expected_score"),
        ('{"data": [], "target": [], "expected_score": 0.1}', "non-empty lists of the same length"),
        ('{"data": [[1, "M", "writer", 1]], "target": [1], "expected_score": "high"}', "finite number"),
        ('{"data": [[1, "M", "writer", 1]], "target": [1], "expected_score": 0.1}', "has no ranking check"),
        (UNKNOWN_MOVIE, "unknown movie_id"),
        ('{"data": [[30, "M"]], "target": [1], "expected_score": 0.1, ' + NO_USERS, "accuracy check:"),
    ],
)
def test_a_missing_or_malformed_test_file_is_one_clear_line(
    synthetic_model_dir: Path, tmp_path: Path, test_data: str | None, message: str
) -> None:
    path = tmp_path / "test_data.json"
    if test_data is not None:
        path.write_text(test_data)
    result = run_check(synthetic_model_dir / MODEL_FILE_NAME, path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read"), (pickle.dumps({"a": 1}), "not a RelevanceForest")]
)
def test_a_missing_file_or_one_that_is_not_a_model_is_one_clear_line(
    synthetic_model_dir: Path, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / MODEL_FILE_NAME
    if content is not None:
        path.write_bytes(content)
    result = run_check(path, synthetic_model_dir / TEST_DATA_FILE_NAME)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
