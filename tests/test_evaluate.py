from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.data import load_dataset
from app.evaluate import MODEL_NAME, evaluate, evaluate_split


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
    ]  # fmt: skip
    table = (tmp_path / "evaluation.md").read_text()
    for method in report["summary"]["methods"]:
        assert f"| {method} |" in table
    assert len(json.loads((tmp_path / "evaluation.json").read_text())["per_seed"]) == 2
    assert len(report["summary"]["ndcg_ratio_to_best_baseline"]["per_seed"]) == 2
    assert (tmp_path / "ndcg_at_k.png").read_bytes().startswith(b"\x89PNG")
