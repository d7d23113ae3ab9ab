"""Check a model against the held-out users its test data was cut from: its R^2, and a ranking gate.

python tests/run_accuracy_tests.py MODEL.pkl TEST_DATA.json [--error-tolerance 1e-5]

Two checks, both reported:
- R^2 on the held-out rows is expected_score (recorded at training) within the
  tolerance, or better: the file was not changed and the libraries predict alike.
- The model's NDCG@10 on the held-out users (their demographics alone, scored by
  the titles they rated 4 or 5) beats that of "most rated 4+" from the training
  users by more than the held-out users' own noise: in a paired bootstrap over
  those users (seeded, so a model gets one verdict), the 5th percentile of the
  mean difference must be above zero (one-sided 95%). A model and its test file
  made together pass the first check whatever the model is worth; this one fails
  a model that ranks worse than popularity, such as a forest trained on shuffled
  targets, and one that is no better, such as popularity itself served to all.

Exit status: 0 when both pass, 1 when either fails, 2 when a file is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

# Run as a script from anywhere: the project root holds the app package the pickle refers to.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from app.model.recommender import ModelFileError, Recommender
from app.training.metrics import ndcg_at_k

CHECK_PASSED, SCORE_TOO_LOW, UNUSABLE_INPUT = 0, 1, 2
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# One-sided 95%: the model must beat popularity in all but the worst 5% of resampled held-out populations.
LOWER_PERCENTILE = 5


def read_test_data(path: Path) -> tuple[list, list, float, dict]:
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON: {error}") from error
    if not isinstance(document, dict) or not {"data", "target", "expected_score"} <= document.keys():
        raise ValueError(f"{path} must be an object with data, target and expected_score")
    data, target, expected = document["data"], document["target"], document["expected_score"]
    if not isinstance(data, list) or not isinstance(target, list) or len(data) != len(target) or not data:
        raise ValueError(f"{path}: data and target must be non-empty lists of the same length")
    if isinstance(expected, bool) or not isinstance(expected, int | float) or not math.isfinite(expected):
        raise ValueError(f"{path}: expected_score must be a finite number")
    ranking = document.get("ranking")
    if not isinstance(ranking, dict) or not {"k", "users", "most_rated_4plus"} <= ranking.keys():
        raise ValueError(f"{path} has no ranking check (k, users, most_rated_4plus): retrain with python -m app.train")
    return data, target, float(expected), ranking


@dataclass(frozen=True)
class GateResult:
    model_ndcg: float
    popular_ndcg: float
    users: int
    lower_bound: float  # LOWER_PERCENTILE of the bootstrapped mean of (model - popular) NDCG, per user

    @property
    def passed(self) -> bool:
        return self.lower_bound > 0


def ranking_gate(recommender: Recommender, ranking: dict) -> GateResult:
    """NDCG@k of the model and of "most rated 4+" over the held-out users who rated anything 4 or 5, and the
    lower bound of their paired difference."""
    k = ranking["k"]
    judged = [user for user in ranking["users"] if user["liked"]]
    if not judged:
        raise ValueError("the ranking check has no held-out user who rated anything 4 or 5")
    liked = [set(user["liked"]) for user in judged]
    model_lists = [recommender.recommend(user["age"], user["gender"], user["occupation"], k) for user in judged]
    popular_lists = [ranking["most_rated_4plus"]] * len(judged)
    model, popular = user_ndcg(model_lists, liked, k), user_ndcg(popular_lists, liked, k)
    return GateResult(float(model.mean()), float(popular.mean()), len(judged), bootstrap_lower_bound(model - popular))


def bootstrap_lower_bound(differences: np.ndarray) -> float:
    """LOWER_PERCENTILE of the mean of differences over users drawn with replacement (a paired bootstrap: each
    user's two scores stay together, so what users share cancels)."""
    rows = np.random.RandomState(BOOTSTRAP_SEED).randint(len(differences), size=(BOOTSTRAP_RESAMPLES, len(differences)))
    return float(np.percentile(differences[rows].mean(axis=1), LOWER_PERCENTILE))


def user_ndcg(lists: list[list[str]], liked: list[set[str]], k: int) -> np.ndarray:
    """Each user's NDCG@k of their list."""
    if any(len(titles) < k for titles in lists):
        raise ValueError(f"a ranked list holds fewer than {k} titles")
    columns = {title: column for column, title in enumerate(set().union(*liked, *(titles[:k] for titles in lists)))}
    relevant = np.zeros((len(liked), len(columns)), dtype=bool)
    for row, titles in enumerate(liked):
        relevant[row, [columns[title] for title in titles]] = True
    top = np.array([[columns[title] for title in titles[:k]] for titles in lists])
    return ndcg_at_k(top, relevant, k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model.pkl, or a .tar.gz holding one")
    parser.add_argument("test_data", type=Path, help="test_data.json")
    parser.add_argument("--error-tolerance", type=float, default=1e-5)
    parser.add_argument(
        "--skip-ranking-gate", action="store_true", help="report the ranking gate but pass a model it refuses (drills)"
    )
    args = parser.parse_args(argv)
    try:
        data, target, expected, ranking = read_test_data(args.test_data)
        recommender = Recommender.load(args.model)
        score = recommender.estimator.score(data, target)
        gate = ranking_gate(recommender, ranking)
    except (ModelFileError, ValueError, TypeError, KeyError) as error:
        print(f"accuracy check: {error}", file=sys.stderr)
        return UNUSABLE_INPUT
    failed = False
    if score < expected - args.error_tolerance:
        print(
            f"accuracy check FAILED: R^2 {score:.6f} is below the expected {expected:.6f} "
            f"(tolerance {args.error_tolerance:g})",
            file=sys.stderr,
        )
        failed = True
    else:
        print(f"accuracy check passed: R^2 {score:.6f}, expected {expected:.6f} (tolerance {args.error_tolerance:g})")
    comparison = (
        f"NDCG@{ranking['k']} {gate.model_ndcg:.4f} against {gate.popular_ndcg:.4f} for most rated 4+, "
        f"on {gate.users} held-out users; bootstrap {LOWER_PERCENTILE}th percentile of the difference "
        f"{gate.lower_bound:+.4f}"
    )
    if not gate.passed:
        verdict = "IGNORED (--skip-ranking-gate)" if args.skip_ranking_gate else "FAILED"
        print(f"ranking gate {verdict}: {comparison}: the model is no better than popularity", file=sys.stderr)
        failed = failed or not args.skip_ranking_gate
    else:
        print(f"ranking gate passed: {comparison}")
    return SCORE_TOO_LOW if failed else CHECK_PASSED


if __name__ == "__main__":
    sys.exit(main())
