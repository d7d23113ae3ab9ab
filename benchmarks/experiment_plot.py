"""docs/experiment.png: one simulated experiment read after every 50 units, its difference and intervals.

python -m benchmarks.experiment_plot [--out docs/experiment.png]

A candidate better by 0.3 liked titles per recommendation (tests/experiment/population.py: the served
model's 4.23, sd 2.56, as measured offline), against the control, with half of the traffic. The always-valid
interval of each read, their running intersection (what status shows, app/experiment/analysis.py), and the
fixed-sample 95% interval that peeking invalidates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from app.experiment.analysis import compare, narrowed
from tests.experiment.population import Population, looks

ROOT = Path(__file__).resolve().parent.parent
SERVED = Population.with_moments(4.23, 2.56)
BETTER = Population.with_moments(4.53, 2.56)
UNITS = 8000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "experiment.png")
    args = parser.parse_args()
    reads = list(looks(np.random.default_rng(7), SERVED, BETTER, experiments=1, units=UNITS))
    units = np.array([done for done, _, _ in reads])
    comparisons = [compare(control, candidate) for _, control, candidate in reads]
    difference = np.array([float(c.difference[0]) for c in comparisons])
    lower = np.array([float(c.lower[0]) for c in comparisons])
    upper = np.array([float(c.upper[0]) for c in comparisons])
    fixed = 1.96 * np.sqrt(np.array([float(c.variance[0]) for c in comparisons]))
    running = [(np.full(1, np.nan), np.full(1, np.nan))]
    for comparison in comparisons:
        running.append(narrowed(*running[-1], comparison))
    running_lower, running_upper = (np.array([float(bounds[side][0]) for bounds in running[1:]]) for side in (0, 1))
    decided = next((done for done, low in zip(units, running_lower, strict=True) if low > 0), None)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.fill_between(units, running_lower, running_upper, alpha=0.25,
                      label="running always-valid 95% interval (what status shows)")  # fmt: skip
    axes.plot(units, lower, "b-", linewidth=0.5, label="each read's own always-valid interval")
    axes.plot(units, upper, "b-", linewidth=0.5)
    axes.plot(units, difference - fixed, "k:", linewidth=1, label="fixed-sample 95% interval (invalid when peeking)")
    axes.plot(units, difference + fixed, "k:", linewidth=1)
    axes.plot(units, difference, label="candidate minus control")
    axes.axhline(0.3, color="tab:green", linestyle="--", linewidth=1, label="true difference (+0.3)")
    axes.axhline(0, color="grey", linewidth=0.8)
    if decided is not None:
        axes.axvline(decided, color="tab:red", linewidth=1, label=f"verdict 'better' at {decided} units")
    axes.set(xlabel="units (both arms)", ylabel="liked titles per recommendation", ylim=(-1.5, 1.5),
             title="One simulated experiment, read after every 50 units")  # fmt: skip
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out, dpi=110)
    print(f"{args.out}: verdict at {decided} units")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
