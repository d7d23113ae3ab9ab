"""Cold-start evaluation of the model against the baselines (spec 4.2, 4.3), and warm start beside it (4.4; no Flask).

python -m app.evaluate [--data-dir DIR] [--seed N ...] [--out-dir reports] [--feedback-db URL]
python -m app.evaluate --validation [--param NAME=VALUE ...] [--seed N ...]
    the same on validation splits of each seed's training users, for choosing features and hyper-parameters
    (NAME=VALUE: a RelevanceForest parameter, for example min_samples_leaf=100)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sqlalchemy.exc import OperationalError
from tqdm import tqdm

from app.config import ml100k_dir
from app.model.data import DataError, Dataset, ensure_dataset, load_dataset
from app.model.features import People, feature_names, rating_matrices
from app.model.forest import RelevanceForest
from app.training.baselines import ItemMeanRating, all_baselines
from app.training.metrics import corrected_interval, coverage, ndcg_at_k, precision_at_k, recall_at_k, split_users
from app.training.online import MIN_SEGMENT_SCORES, read_log, summarise_online
from app.training.report import online_markdown, plot_curves, plot_feature_importances, plot_online, write_markdown
from app.training.warm_evaluation import evaluate_warm_split, summarise_warm
from app.training.warm_report import plot_warm, warm_markdown

# The splits evaluated by default. Seeds 1, 2 and 3 served during development (features and the forest's
# hyper-parameters were compared on them, MODEL-NOTES and earlier READMEs); 101-110 took no part in choosing:
# since then, choices are made with --validation, on splits of their training users only. The segment
# baseline's smoothing is tuned on a validation split of each split's training users too.
DEFAULT_SEEDS = tuple(range(101, 111))
MODEL_NAME = "relevance forest"
CURVE_DEPTH = 20
K = 10


def split_for(user_ids: pd.Index, seed: int, *, validation: bool = False) -> tuple[pd.Index, pd.Index]:
    """(training, held-out) users of a seed's split. For validation, a split of its training users alone: what is
    chosen on it never saw the users that the evaluation holds out."""
    training_users, held_out_users = split_users(user_ids, seed=seed)
    return split_users(training_users, seed=seed) if validation else (training_users, held_out_users)


def split_datasets(dataset: Dataset, seed: int, *, validation: bool = False) -> tuple[Dataset, Dataset]:
    """(training, held-out) parts of the dataset for a seed's split (split_for)."""
    training_users, held_out_users = split_for(dataset.users.index, seed, validation=validation)
    return dataset.restricted_to(training_users), dataset.restricted_to(held_out_users)


def evaluate_split(
    dataset: Dataset, seed: int, *, validation: bool = False, model_params: dict | None = None
) -> tuple[dict[str, dict], RelevanceForest]:
    """Every method fitted on this split's training users, scored on its held-out users."""
    training, held_out = split_datasets(dataset, seed, validation=validation)
    people = People.from_users(held_out.users)
    _, relevant = rating_matrices(held_out.users.index, dataset.movies.index, held_out.ratings)

    model = RelevanceForest(random_state=seed, **(model_params or {})).fit(training)
    pool_relevance = relevant[:, model.pool_].ravel()
    results = {MODEL_NAME: _ranking_metrics(model.top_movies(people, CURVE_DEPTH), relevant)}
    results[MODEL_NAME]["r2"] = r2_score(pool_relevance, model.pool_scores(people).ravel())
    for baseline in all_baselines(random_state=seed):
        baseline.fit(training)
        results[baseline.name] = _ranking_metrics(baseline.top_movies(people, CURVE_DEPTH), relevant)
        predicted = baseline.relevance(people)
        if predicted is not None:
            results[baseline.name]["r2"] = r2_score(pool_relevance, predicted[:, model.pool_].ravel())
        if isinstance(baseline, ItemMeanRating):
            results[baseline.name]["rmse"] = baseline.rmse(held_out.ratings)
    return results, model


def _ranking_metrics(top: np.ndarray, relevant: np.ndarray) -> dict:
    """Means over the held-out users who rated anything 4 or 5 (the others have nothing to find)."""
    judged = relevant.sum(axis=1) > 0
    top, relevant = top[judged], relevant[judged]
    depths = range(1, CURVE_DEPTH + 1)
    return {
        "ndcg@10": float(ndcg_at_k(top, relevant, K).mean()),
        "precision@10": float(precision_at_k(top, relevant, K).mean()),
        "recall@10": float(recall_at_k(top, relevant, K).mean()),
        "coverage@10": coverage(top[:, :K], relevant.shape[1]),
        "ndcg_curve": [float(ndcg_at_k(top, relevant, k).mean()) for k in depths],
        "precision_curve": [float(precision_at_k(top, relevant, k).mean()) for k in depths],
    }


def summarise(per_seed: list[dict[str, dict]]) -> dict:
    """Mean and range of each metric per method, and the model's NDCG@10 over the best baseline's, per seed."""
    methods = list(per_seed[0])
    summary = {"methods": {}}
    for method in methods:
        metrics = [name for name, value in per_seed[0][method].items() if not isinstance(value, list)]
        summary["methods"][method] = {
            name: {
                "mean": float(np.mean([seed[method][name] for seed in per_seed])),
                "min": float(np.min([seed[method][name] for seed in per_seed])),
                "max": float(np.max([seed[method][name] for seed in per_seed])),
            }
            for name in metrics
        }
    baselines = [method for method in methods if method != MODEL_NAME]
    best = max(baselines, key=lambda method: summary["methods"][method]["ndcg@10"]["mean"])
    summary["best_baseline"] = best
    ndcg = _paired_ratios(per_seed, best, "ndcg@10")
    summary["ndcg_ratio_to_best_baseline"] = {**ndcg, "interval_95": corrected_interval(np.array(ndcg["per_seed"]))}
    summary["coverage_ratio_to_best_baseline"] = _paired_ratios(per_seed, best, "coverage@10")
    return summary


def _paired_ratios(per_seed: list[dict[str, dict]], baseline: str, metric: str) -> dict:
    """The model's metric over the baseline's, per seed, with their mean and lowest."""
    ratios = np.array([seed[MODEL_NAME][metric] / seed[baseline][metric] for seed in per_seed])
    return {"per_seed": ratios.tolist(), "mean": float(ratios.mean()), "min": float(ratios.min())}


def evaluate(
    data_dir: Path, seeds: list[int], out_dir: Path, *, validation: bool = False, model_params: dict | None = None
) -> dict:
    dataset = load_dataset(data_dir)
    per_seed, warm_per_seed = [], []
    for seed in tqdm(seeds, desc="splits", file=sys.stderr):
        results, model = evaluate_split(dataset, seed, validation=validation, model_params=model_params)
        per_seed.append(results)
        if model.warm_start:
            warm_per_seed.append(
                evaluate_warm_split(model, *split_datasets(dataset, seed, validation=validation), seed)
            )
    report = {
        "seeds": seeds, "validation": validation, "model_params": model_params or {},
        "summary": summarise(per_seed), "per_seed": per_seed,
        "warm_start": {"summary": summarise_warm(warm_per_seed), "per_seed": warm_per_seed} if warm_per_seed else None,
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=1))
    plot_curves(per_seed, out_dir)
    plot_feature_importances(feature_names(), model.forest_.feature_importances_, out_dir)
    write_markdown(report, out_dir / "evaluation.md")
    if warm_per_seed:
        plot_warm(report["warm_start"]["summary"], out_dir)
        with (out_dir / "evaluation.md").open("a") as markdown:
            markdown.write("\n" + warm_markdown(report["warm_start"]["summary"], seeds))
    return report


def evaluate_online(database_url: str, out_dir: Path) -> str:
    """The online view beside the offline one: reports/online.json, online.md and online.png."""
    versions = summarise_online(*read_log(database_url))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "online.json").write_text(json.dumps(versions, indent=1))
    table = online_markdown(versions, MIN_SEGMENT_SCORES)
    (out_dir / "online.md").write_text(table)
    plot_online(versions, out_dir / "online.png")
    return table


def model_param(text: str) -> tuple[str, object]:
    """NAME=VALUE for a RelevanceForest parameter; VALUE a Python literal."""
    name, _, value = text.partition("=")
    if name not in RelevanceForest().get_params():
        raise argparse.ArgumentTypeError(f"{name!r} is not a RelevanceForest parameter")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError) as error:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not a number or another Python literal") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="ml-100k directory (default: ML100K_DIR, else data/ml-100k)")
    parser.add_argument("--seed", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="one split per seed")
    parser.add_argument("--out-dir", type=Path, default=Path("reports"))
    parser.add_argument("--feedback-db", help="SQLAlchemy URL of the service's database: add the online view")
    parser.add_argument("--validation", action="store_true", help="split each seed's training users instead")
    parser.add_argument("--param", action="append", default=[], type=model_param, metavar="NAME=VALUE",
                        help="a RelevanceForest parameter, for example min_samples_leaf=100")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        evaluate(ensure_dataset(args.data_dir or ml100k_dir()), args.seed, args.out_dir, validation=args.validation,
                 model_params=dict(args.param))  # fmt: skip
        online = evaluate_online(args.feedback_db, args.out_dir) if args.feedback_db else ""
    except (DataError, OperationalError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print((args.out_dir / "evaluation.md").read_text())
    print(online)
    return 0


if __name__ == "__main__":
    sys.exit(main())
