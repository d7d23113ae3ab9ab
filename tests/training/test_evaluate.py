from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from app.model.data import load_dataset
from app.training.evaluate import (
    DEFAULT_SEEDS,
    MODEL_NAME,
    corrected_interval,
    evaluate,
    evaluate_split,
    main,
    split_for,
)


@pytest.mark.dataset
def test_the_model_beats_most_rated_on_a_real_split(real_data_dir: Path) -> None:
    results, _ = evaluate_split(load_dataset(real_data_dir), seed=17)
    model, most_rated = results[MODEL_NAME], results["most rated"]
    assert model["ndcg@10"] > most_rated["ndcg@10"]
    assert model["coverage@10"] > most_rated["coverage@10"]
    assert 0 < model["r2"] < 1


def test_evaluation_writes_the_table_json_and_plots(synthetic_data_dir: Path, tmp_path: Path) -> None:
    report = evaluate(synthetic_data_dir, [1, 2], tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "evaluation.json", "evaluation.md", "feature_importances.png", "ndcg_at_k.png", "precision_at_k.png",
        "warm_ndcg_at_k.png",
    ]  # fmt: skip
    table = (tmp_path / "evaluation.md").read_text()
    for method in report["summary"]["methods"]:
        assert f"| {method} |" in table
    assert len(json.loads((tmp_path / "evaluation.json").read_text())["per_seed"]) == 2
    ratio = report["summary"]["ndcg_ratio_to_best_baseline"]
    assert len(ratio["per_seed"]) == 2
    low, high = ratio["interval_95"]
    assert low <= ratio["mean"] <= high
    assert "95% interval" in table
    assert (tmp_path / "ndcg_at_k.png").read_bytes().startswith(b"\x89PNG")


# The ten default splits' NDCG@10 ratios to the best baseline, as the README reports them.
SPLIT_RATIOS = [1.015, 1.007, 1.045, 1.034, 1.026, 1.018, 1.023, 1.043, 1.041, 1.016]


def test_the_interval_over_overlapping_splits_is_nadeau_and_bengios_corrected_one() -> None:
    """Recomputed by hand: mean +- t(0.975, 9 df, from a table) * s * sqrt(1/10 + 20/80). The splits share 3/4 of
    their training users, so the uncorrected s / sqrt(10), or a bootstrap over the ten, is far too narrow."""
    mean, s = statistics.fmean(SPLIT_RATIOS), statistics.stdev(SPLIT_RATIOS)
    half_width = 2.262157 * s * (1 / 10 + 20 / 80) ** 0.5
    low, high = corrected_interval(np.array(SPLIT_RATIOS))
    assert low == pytest.approx(mean - half_width, abs=1e-6)
    assert high == pytest.approx(mean + half_width, abs=1e-6)


def test_a_single_split_has_no_interval() -> None:
    assert corrected_interval(np.array([1.02])) is None


def test_ten_seeds_that_took_no_part_in_choosing_are_the_default() -> None:
    assert len(DEFAULT_SEEDS) == 10 and not {1, 2, 3} & set(DEFAULT_SEEDS)


def test_validation_splits_only_the_training_users_of_each_seed(synthetic_data_dir: Path) -> None:
    users = load_dataset(synthetic_data_dir).users.index
    for seed in DEFAULT_SEEDS:
        training, held_out = split_for(users, seed)
        fitting, validating = split_for(users, seed, validation=True)
        assert set(fitting) | set(validating) == set(training)
        assert not set(fitting) & set(validating)
        assert not (set(fitting) | set(validating)) & set(held_out)


def test_validation_runs_with_forest_parameters_and_says_so(synthetic_data_dir: Path, tmp_path: Path) -> None:
    args = ["--data-dir", str(synthetic_data_dir), "--seed", "1", "--out-dir", str(tmp_path), "--validation",
            "--param", "min_samples_leaf=20", "--param", "pool_size=25"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["validation"] is True
    assert report["model_params"] == {"min_samples_leaf": 20, "pool_size": 25}
    table = (tmp_path / "evaluation.md").read_text()
    assert table.startswith("Validation (splits of each seed's training users only) over seeds 1, min_samples_leaf=20")
    assert "coverage@10 of the model over the best baseline's" in table


@pytest.mark.parametrize(
    ("param", "message"),
    [("leaves=3", "'leaves' is not a RelevanceForest parameter"), ("pool_size=big", "pool_size: 'big' is not")],
)
def test_a_wrong_parameter_is_refused_in_one_line(param: str, message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--validation", "--param", param])
    assert message in capsys.readouterr().err
