"""Check that a model scores at least its expected R^2 on held-out rows.

python tests/run_accuracy_tests.py MODEL.pkl TEST_DATA.json [--error-tolerance 1e-5]

Exit status: 0 when the score is within the tolerance of expected_score (or
better), 1 when it is lower, 2 when a file is missing or malformed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

# Run as a script from anywhere: the project root holds the app package the pickle refers to.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.recommender import ModelFileError, Recommender

CHECK_PASSED, SCORE_TOO_LOW, UNUSABLE_INPUT = 0, 1, 2


def read_test_data(path: Path) -> tuple[list, list, float]:
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
    return data, target, float(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="model.pkl, or a .tar.gz holding one")
    parser.add_argument("test_data", type=Path, help="test_data.json")
    parser.add_argument("--error-tolerance", type=float, default=1e-5)
    args = parser.parse_args(argv)
    try:
        data, target, expected = read_test_data(args.test_data)
        score = Recommender.load(args.model).estimator.score(data, target)
    except (ModelFileError, ValueError, TypeError) as error:
        print(f"accuracy check: {error}", file=sys.stderr)
        return UNUSABLE_INPUT
    if score < expected - args.error_tolerance:
        print(
            f"accuracy check FAILED: R^2 {score:.6f} is below the expected {expected:.6f} "
            f"(tolerance {args.error_tolerance:g})",
            file=sys.stderr,
        )
        return SCORE_TOO_LOW
    print(f"accuracy check passed: R^2 {score:.6f}, expected {expected:.6f} (tolerance {args.error_tolerance:g})")
    return CHECK_PASSED


if __name__ == "__main__":
    sys.exit(main())
