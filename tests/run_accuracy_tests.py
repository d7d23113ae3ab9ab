"""Check a model against the held-out users its test data was cut from: its R^2, and the gates.

python tests/run_accuracy_tests.py MODEL.pkl TEST_DATA.json [--error-tolerance 1e-5]

Every check is reported:
- R^2 on the held-out rows is expected_score (recorded at training) within the
  tolerance, or better: the file was not changed and the libraries predict alike.
- The ranking gate (app/training/gate.py, the rule every gate uses): the model's
  top 10 for each held-out user, from their demographics alone as the service
  answers, scored by the titles they rated 4 or 5 (NDCG@10), against "most rated
  4+" of the training users. It passes when the model is not worse by more than
  5% of popularity's NDCG at one-sided 95% (a seeded paired bootstrap over the
  users), and its lists are not popularity's own. A model and its test file made
  together pass the first check whatever the model is worth; this one fails a
  model that ranks worse than popularity, such as its ranking reversed or a
  forest trained on shuffled targets, and popularity itself served to all. The
  taste gate, by the same rule, asks the forest's scores to order what each held-out
  user liked above what they did not (an AUC among the titles they rated).
- The warm check, by the same rule: each held-out user's list given 5 of their scores at random (test_data.json's
  "warm"), against the model's cold list with those titles taken out, scored by the titles they liked among the
  rest. Here the model must be better (a lower bound above 0): a model that ignores the scores, or one made
  before warm start, answers the cold lists and fails.

Exit status: 0 when every check passes, 1 when any fails, 2 when a file is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# Run as a script from anywhere: the project root holds the app package the pickle refers to.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from app.model.recommender import ModelFileError, Recommender
from app.training.gate import BETTER, GATE_DEPTH, Verdict, judge, judge_taste

CHECK_PASSED, SCORE_TOO_LOW, UNUSABLE_INPUT = 0, 1, 2
POPULAR, COLD = "most rated 4+", "the cold model"
RANKING_KEYS = {"k", "users", "most_rated_4plus", "pool_positive_share"}
WARM_KEYS = {"revealed", "users"}
# What each gate compares the model with (app/training/gate.py).
REFERENCES = {"ranking": POPULAR, "taste": POPULAR, "warm": COLD}


def read_test_data(path: Path) -> tuple[list, list, float, dict, dict]:
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
    if not isinstance(ranking, dict) or not ranking.keys() >= RANKING_KEYS:
        raise ValueError(
            f"{path} has no ranking check ({', '.join(sorted(RANKING_KEYS))}): retrain with python -m app.train"
        )
    if ranking["k"] != GATE_DEPTH:
        raise ValueError(f"{path} ranks {ranking['k']} titles, the gate {GATE_DEPTH}: retrain with python -m app.train")
    warm = document.get("warm")
    if not isinstance(warm, dict) or not warm.keys() >= WARM_KEYS:
        raise ValueError(f"{path} has no warm check ({', '.join(sorted(WARM_KEYS))}): retrain with python -m app.train")
    return data, target, float(expected), ranking, warm


def ranking_gate(recommender: Recommender, ranking: dict) -> Verdict:
    """The model's lists for the held-out users, as the service answers them, against "most rated 4+"."""
    users = ranking["users"]
    model_lists = [recommender.recommend(user["age"], user["gender"], user["occupation"], GATE_DEPTH) for user in users]
    popular_lists = [ranking["most_rated_4plus"]] * len(users)
    return judge(model_lists, popular_lists, [set(user["liked"]) for user in users])


def warm_gate(recommender: Recommender, warm: dict) -> Verdict:
    """The model's lists for the held-out users given their revealed scores, as the service answers them, against
    its cold lists with the revealed titles taken out (what a model that ignores the scores answers)."""
    warm_lists, cold_lists = [], []
    for user in warm["users"]:
        person = user["age"], user["gender"], user["occupation"]
        rated = {entry["movie"]: entry["score"] for entry in user["rated"]}
        warm_lists.append(recommender.recommend(*person, GATE_DEPTH, rated=rated))
        cold = recommender.recommend(*person, GATE_DEPTH + len(rated))
        cold_lists.append([title for title in cold if title not in rated][:GATE_DEPTH])
    return judge(warm_lists, cold_lists, [set(user["liked"]) for user in warm["users"]], margin_share=BETTER)


def taste_gate(recommender: Recommender, data: list, predictions: np.ndarray, ranking: dict) -> Verdict:
    """The forest's scores of the pool for the held-out users (the test rows: user-major, one block of pool movies
    each) against the training users' share of 4 and 5, among the titles each user rated."""
    users, pool_share = ranking["users"], np.asarray(ranking["pool_positive_share"], dtype=float)
    if len(data) != len(users) * len(pool_share):
        raise ValueError(f"the test rows are not one block of {len(pool_share)} pool movies per held-out user")
    estimator = recommender.estimator
    titles = estimator.titles_[pd.Index(estimator.movie_ids_).get_indexer([row[3] for row in data[: len(pool_share)]])]
    liked = np.array([np.isin(titles, user["liked"]) for user in users])
    disliked = np.array([np.isin(titles, user["disliked"]) for user in users])
    scores = predictions.reshape(len(users), len(pool_share))
    return judge_taste(scores, np.broadcast_to(pool_share, scores.shape), liked, disliked)


def checked(recommender: Recommender, test_data: Path) -> tuple[float, float, dict[str, Verdict]]:
    """The model's R^2 on the test data, the R^2 expected, and every gate's verdict by name (the model passes
    when all of them pass)."""
    data, target, expected, ranking, warm = read_test_data(test_data)
    predictions = recommender.estimator.predict(data)
    score = float(r2_score(target, predictions))  # the estimator's score(data, target), predicted once
    gates = {
        "ranking": ranking_gate(recommender, ranking),
        "taste": taste_gate(recommender, data, predictions, ranking),
        "warm": warm_gate(recommender, warm),
    }
    return score, expected, gates


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
        score, expected, gates = checked(Recommender.load(args.model), args.test_data)
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
    for name, gate in gates.items():
        if gate.passed:
            print(f"{name} gate passed: {gate.describe(REFERENCES[name])}")
            continue
        verdict = "IGNORED (--skip-ranking-gate)" if args.skip_ranking_gate else "FAILED"
        reference = REFERENCES[name]
        print(f"{name} gate {verdict}: {gate.describe(reference)}: {gate.reason(reference)}", file=sys.stderr)
        failed = failed or not args.skip_ranking_gate
    return SCORE_TOO_LOW if failed else CHECK_PASSED


if __name__ == "__main__":
    sys.exit(main())
