"""Train the relevance forest and write model/model.pkl, model.json, test_data.json (no Flask).

python -m app.train [--data-dir DIR] [--out-dir model] [--seed N] [--feedback-db URL [--feedback-weight N]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import joblib
import pandas as pd
from sqlalchemy.exc import OperationalError

from app.config import ml100k_dir
from app.model.data import (
    RELEVANT_RATING,
    DataError,
    Dataset,
    ensure_dataset,
    load_dataset,
    sha256_of,
    training_file_checksums,
)
from app.model.features import People, feature_names, rating_matrices
from app.model.forest import RelevanceForest
from app.model.reasons import MIN_RATERS
from app.model.recommender import METADATA_FILE_NAME, MODEL_FILE_NAME
from app.model.session import session_feature_names
from app.model.warm import MAX_SESSION_SIZE, WARM_FOREST_PARAMS
from app.training.baselines import MostPositive
from app.training.feedback import describe_source, read_feedback, rows_for_the_forest, with_feedback
from app.training.gate import GATE_DEPTH
from app.training.metrics import split_users
from app.training.warm_evaluation import warm_check

FORMAT_VERSION = 1
TEST_DATA_FILE_NAME = "test_data.json"
# Users whose rows are kept out of training to check the model with (test_data.json): as many as the evaluation
# holds out (SPEC 4.2), for the ranking gate's power (app/training/gate.py).
TEST_USER_SHARE = 0.2
DEFAULT_SEED = 1
LIBRARIES = ("scikit-learn", "numpy", "pandas", "joblib")


def test_rows(model: RelevanceForest, dataset: Dataset) -> tuple[list[list], list[float]]:
    """Rows [age, gender, occupation, movie_id] for every (user, pool movie), with relevance as target."""
    _, positive = rating_matrices(dataset.users.index, dataset.movies.index, dataset.ratings)
    movie_ids = model.movie_ids_[model.pool_]
    data = [
        [int(user.age), user.gender, user.occupation, int(movie_id)]
        for user in dataset.users.itertuples()
        for movie_id in movie_ids
    ]
    return data, positive[:, model.pool_].ravel().tolist()


def ranking_check(model: RelevanceForest, training: Dataset, held_out: Dataset) -> dict:
    """What the build's gate ranks (app/training/gate.py): each held-out user's demographics and the titles they
    rated 4 or 5 and below 4; the training users' "most rated 4+" titles, and their share of 4 and 5 for each pool
    movie in the order of the test rows: the references the model must match."""
    titles = training.movies["title"]
    ratings = held_out.ratings.groupby("user_id")
    users = [
        {
            "age": int(user.age),
            "gender": user.gender,
            "occupation": user.occupation,
            "liked": sorted(titles.loc[_rated(ratings, user.Index, liked=True)]),
            "disliked": sorted(titles.loc[_rated(ratings, user.Index, liked=False)]),
        }
        for user in held_out.users.itertuples()
    ]
    popularity = MostPositive().fit(training)
    popular = popularity.top_movies(People.from_users(training.users.iloc[:1]), GATE_DEPTH)[0]
    return {
        "k": GATE_DEPTH, "users": users, "most_rated_4plus": titles.iloc[popular].tolist(),
        "pool_positive_share": popularity.positive_.mean(axis=0)[model.pool_].tolist(),
    }  # fmt: skip


def _rated(ratings: pd.core.groupby.DataFrameGroupBy, user_id: int, *, liked: bool) -> list[int]:
    """The movies the user rated 4 or 5 (liked), or below 4."""
    if user_id not in ratings.groups:
        return []
    rows = ratings.get_group(user_id)
    return rows.loc[(rows["rating"] >= RELEVANT_RATING) == liked, "movie_id"].tolist()


def train(
    data_dir: Path, out_dir: Path, seed: int, *, feedback_db: str | None = None, feedback_weight: int = 1
) -> dict:
    """Fit on all users but a held-out share (and the recorded scores), write the three artefacts."""
    dataset = load_dataset(data_dir)
    training_users, test_users = split_users(dataset.users.index, seed=seed, held_out_share=TEST_USER_SHARE)
    ml100k_training = dataset.restricted_to(training_users)
    feedback = read_feedback(feedback_db) if feedback_db else None
    people = ml100k_training if feedback is None else with_feedback(ml100k_training, feedback)
    # The forest weighs each scored request feedback_weight times; its reasons count each person once.
    training = ml100k_training if feedback is None else rows_for_the_forest(people, weight=feedback_weight)
    started = time.perf_counter()
    model = RelevanceForest(random_state=seed, progress=True).fit(training, people)
    training_seconds = time.perf_counter() - started
    held_out = dataset.restricted_to(test_users)
    data, target = test_rows(model, held_out)
    test_r2 = model.score(data, target)

    out_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(out_dir / TEST_DATA_FILE_NAME, lambda path: _dump_json(path, {
        "data": data, "target": target, "expected_score": test_r2,
        "ranking": ranking_check(model, ml100k_training, held_out), "warm": warm_check(held_out, seed),
    }))  # fmt: skip
    _write_atomically(out_dir / MODEL_FILE_NAME, lambda path: joblib.dump(model, path))
    metadata = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_sha256": sha256_of(out_dir / MODEL_FILE_NAME),
        "libraries": {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}},
        "training_files_sha256": training_file_checksums(data_dir),
        "training_users": len(training_users),
        "test_users": len(test_users),
        "seed": seed,
        "target": "1 when the person rated the movie 4 or 5, else 0",
        "row_format": ["age", "gender", "occupation", "movie_id"],
        "features": feature_names(),
        "hyper_parameters": {k: v for k, v in model.get_params().items() if k not in ("n_jobs", "progress")},
        "pool_size": len(model.pool_),
        "warm_start": {
            "features": session_feature_names(),
            "hyper_parameters": WARM_FOREST_PARAMS,
            "max_session_size": MAX_SESSION_SIZE,
        },
        "reasons": {"min_raters": MIN_RATERS, "distinct": len(model.reasons_.reasons)},
        "metrics": {"test_r2": test_r2, "test_rows": len(target), "training_seconds": round(training_seconds, 1)},
        "feedback": None
        if feedback is None
        else {"database": describe_source(feedback_db), "scores": len(feedback), "weight": feedback_weight},
    }
    _write_atomically(out_dir / METADATA_FILE_NAME, lambda path: _dump_json(path, metadata))
    return metadata


def _dump_json(path: Path, document: dict) -> None:
    with path.open("w") as stream:
        json.dump(document, stream, indent=1 if "data" not in document else None)


def _write_atomically(target: Path, write) -> None:
    """Write through a temporary file in the same directory, then rename it over the target."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="ml-100k directory (default: ML100K_DIR, else data/ml-100k)")
    parser.add_argument("--out-dir", type=Path, default=Path("model"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--feedback-db", help="SQLAlchemy URL of the service's database: add its recorded scores")
    parser.add_argument("--feedback-weight", type=int, default=1, help="how many times each scored request counts")
    args = parser.parse_args(argv)
    if args.feedback_weight < 1:
        parser.error("--feedback-weight must be 1 or more")
    try:
        metadata = train(
            ensure_dataset(args.data_dir or ml100k_dir()), args.out_dir, args.seed,
            feedback_db=args.feedback_db, feedback_weight=args.feedback_weight,
        )  # fmt: skip
    except (DataError, OperationalError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metrics = metadata["metrics"]
    print(
        f"model {metadata['model_sha256'][:12]} written to {args.out_dir}/ in {metrics['training_seconds']} s: "
        f"R^2 {metrics['test_r2']:.4f} on {metrics['test_rows']} rows of {metadata['test_users']} held-out users"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
