"""The warm-start part of the evaluation report: a Markdown table per way of revealing, and a plot (no Flask)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from app.training.warm_evaluation import METHODS, REVEALED, SESSION_BASELINE, SESSION_SIZES, WARM

PLOT_FILE_NAME = "warm_ndcg_at_k.png"


def warm_markdown(summary: dict, seeds: list[int]) -> str:
    lines = [
        f"Warm start (SPEC 4.4) over the same seeds ({', '.join(map(str, seeds))}): k of each held-out user's "
        "ratings revealed as the request's rated, every other movie ranked, relevant = rated 4 or 5 among the rest; "
        "NDCG@10, mean over the splits; ratios paired per seed, with Nadeau and Bengio's corrected 95% interval "
        "and the lowest seed.",
    ]
    for way in REVEALED:
        lines += [
            "",
            f"Revealed {way}:",
            "",
            f"| k | {' | '.join(METHODS)} | {WARM} / cold | {WARM} / {SESSION_BASELINE} | users |",
            "|---" * (len(METHODS) + 4) + "|",
        ]
        for k in map(str, SESSION_SIZES):
            row = summary[way][k]
            cells = [f"{row[method]:.4f}" for method in METHODS]
            lines.append(
                f"| {k} | {' | '.join(cells)} | {_ratio(row['ratio_to_cold'])} "
                f"| {_ratio(row['ratio_to_session_baseline'])} | {row['users']} |"
            )
    return "\n".join(lines) + "\n"


def _ratio(ratio: dict) -> str:
    interval = ratio["interval_95"]
    within = "" if interval is None else f" ({interval[0]:.3f} - {interval[1]:.3f})"
    return f"{ratio['mean']:.3f}{within}, lowest {ratio['min']:.3f}"


def plot_warm(summary: dict, out_dir: Path) -> None:
    """NDCG@10 against k, one panel per way of revealing, one line per method."""
    figure, panels = plt.subplots(1, len(REVEALED), figsize=(10, 4.2), sharey=True)
    for axes, way in zip(panels, REVEALED, strict=True):
        for method in METHODS:
            axes.plot(SESSION_SIZES, [summary[way][str(k)][method] for k in SESSION_SIZES], marker="o", label=method)
        axes.set_title(f"k revealed {way}")
        axes.set_xlabel("k (titles the person has scored)")
        axes.set_xticks(SESSION_SIZES)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("NDCG@10 over the rest")
    panels[0].legend()
    figure.tight_layout()
    figure.savefig(out_dir / PLOT_FILE_NAME, dpi=100)
    plt.close(figure)
