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
from pathlib import Path

# Run as a script from anywhere: the project root holds the app package the pickle refers to.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.model.recommender import ModelFileError, Recommender
from app.training.gate import GATE_DEPTH, Verdict, judge

CHECK_PASSED, SCORE_TOO_LOW, UNUSABLE_INPUT = 0, 1, 2
POPULAR = "most rated 4+"


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
    if ranking["k"] != GATE_DEPTH:
        raise ValueError(f"{path} ranks {ranking['k']} titles, the gate {GATE_DEPTH}: retrain with python -m app.train")
    return data, target, float(expected), ranking


def ranking_gate(recommender: Recommender, ranking: dict) -> Verdict:
    """The model's lists for the held-out users, as the service answers them, against "most rated 4+"."""
    users = ranking["users"]
    model_lists = [recommender.recommend(user["age"], user["gender"], user["occupation"], GATE_DEPTH) for user in users]
    popular_lists = [ranking["most_rated_4plus"]] * len(users)
    return judge(model_lists, popular_lists, [set(user["liked"]) for user in users])


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
    comparison = gate.describe(POPULAR)
    if not gate.passed:
        verdict = "IGNORED (--skip-ranking-gate)" if args.skip_ranking_gate else "FAILED"
        print(f"ranking gate {verdict}: {comparison}: the model is no better than popularity", file=sys.stderr)
        failed = failed or not args.skip_ranking_gate
    else:
        print(f"ranking gate passed: {comparison}")
    return SCORE_TOO_LOW if failed else CHECK_PASSED


if __name__ == "__main__":
    sys.exit(main())
