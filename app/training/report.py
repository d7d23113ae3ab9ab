"""The evaluation report: a Markdown table and PNG plots (no Flask)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

COLUMNS = {
    "ndcg@10": "NDCG@10",
    "precision@10": "P@10",
    "recall@10": "R@10",
    "coverage@10": "coverage@10",
    "r2": "R^2 (held-out rows)",
    "rmse": "rating RMSE",
}
CURVES = {"ndcg_curve": "NDCG@k", "precision_curve": "Precision@k"}


def write_markdown(report: dict, path: Path) -> None:
    summary = report["summary"]
    what = "Validation (splits of each seed's training users only)" if report["validation"] else "Cold-start evaluation"
    settings = "".join(f", {name}={value}" for name, value in report["model_params"].items())
    lines = [
        f"{what} over seeds {', '.join(map(str, report['seeds']))}{settings}: mean (min - max) over the splits.",
        "",
        "| method | " + " | ".join(COLUMNS.values()) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for method, metrics in summary["methods"].items():
        cells = [
            f"{metrics[name]['mean']:.4f} ({metrics[name]['min']:.3f} - {metrics[name]['max']:.3f})"
            if name in metrics
            else "-"
            for name in COLUMNS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    ratio, coverage = summary["ndcg_ratio_to_best_baseline"], summary["coverage_ratio_to_best_baseline"]
    interval = (
        "one split: no interval"
        if ratio["interval_95"] is None
        else f"95% interval {ratio['interval_95'][0]:.4f} - {ratio['interval_95'][1]:.4f}, "
        "Nadeau and Bengio's corrected resampled t over the overlapping splits"
    )
    lines += [
        "",
        f"NDCG@10 of the model over the best baseline ({summary['best_baseline']}), paired per seed: "
        f"mean {ratio['mean']:.4f} ({interval}), lowest {ratio['min']:.4f} "
        f"(per seed: {', '.join(f'{value:.4f}' for value in ratio['per_seed'])}).",
        "",
        f"coverage@10 of the model over the best baseline's: mean {coverage['mean']:.3f}, "
        f"lowest {coverage['min']:.3f}.",
        "",
    ]
    path.write_text("\n".join(lines))


def plot_curves(per_seed: list[dict[str, dict]], out_dir: Path) -> None:
    """NDCG@k and Precision@k for k = 1..20, mean over seeds, one line per method."""
    for key, label in CURVES.items():
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for method in per_seed[0]:
            curve = np.mean([seed[method][key] for seed in per_seed], axis=0)
            axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=method)
        axes.set_xlabel("k")
        axes.set_ylabel(label)
        axes.set_title(f"{label} for held-out users (cold start)")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(out_dir / f"{key.removesuffix('_curve')}_at_k.png", dpi=100)
        plt.close(figure)


def plot_feature_importances(names: list[str], importances: np.ndarray, out_dir: Path, top: int = 20) -> None:
    order = np.argsort(importances)[-top:]
    figure, axes = plt.subplots(figsize=(7, 6))
    axes.barh([names[i] for i in order], importances[order])
    axes.set_xlabel("impurity-based importance")
    axes.set_title(f"The forest's {top} most important features")
    figure.tight_layout()
    figure.savefig(out_dir / "feature_importances.png", dpi=100)
    plt.close(figure)


def online_markdown(versions: dict, min_segment_scores: int) -> str:
    """The online view as Markdown: a row per model version, then by reasons shown or not, then its segments
    with enough scores."""
    header = "| served | scored | scores | mean score | share of 4 and 5 |"
    lines = [
        "Online view: how people scored each model version's recommendations.",
        "",
        f"| model version {header}",
        "|---|---|---|---|---|---|",
        *(f"| {version[:12]} {_figures_row(figures)}" for version, figures in versions.items()),
        "",
        "With reasons (explain) or without. This does not measure what reasons do: the page always asks for them",
        "and API clients choose, so the two groups are different clients, not a random split.",
        "",
        f"| model version | reasons {header}",
        "|---|---|---|---|---|---|---|",
    ]
    for version, figures in versions.items():
        lines += [f"| {version[:12]} | {shown} {_figures_row(split)}" for shown, split in figures["reasons"].items()]
    for version, figures in versions.items():
        if figures["segments"]:
            lines += ["", f"Segments of {version[:12]} with {min_segment_scores} scores or more:", "",
                      "| segment | scores | mean score | share of 4 and 5 |", "|---|---|---|---|"]  # fmt: skip
            for segment, row in figures["segments"].items():
                lines.append(f"| {segment} | {row['scores']} | {row['mean_score']:.2f} | {row['share_4_or_5']:.3f} |")
    return "\n".join(lines) + "\n"


def _figures_row(figures: dict) -> str:
    mean = "-" if figures["mean_score"] is None else f"{figures['mean_score']:.2f}"
    share = "-" if figures["share_4_or_5"] is None else f"{figures['share_4_or_5']:.3f}"
    return (
        f"| {figures['recommendations_served']} | {figures['recommendations_scored']} | {figures['scores']} "
        f"| {mean} | {share} |"
    )


def plot_online(versions: dict, path: Path) -> None:
    names = [version[:12] for version in versions]
    shares = [figures["share_4_or_5"] or 0 for figures in versions.values()]
    means = [figures["mean_score"] or 0 for figures in versions.values()]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4))
    positions = np.arange(len(names))
    left.bar(positions, means)
    left.set_ylim(1, 5)
    left.set_title("Mean score")
    right.bar(positions, shares)
    right.set_ylim(0, 1)
    right.set_title("Share of scores 4 or 5")
    for axes in (left, right):
        axes.set_xticks(positions, names, rotation=20)
        axes.set_xlabel("model version")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
