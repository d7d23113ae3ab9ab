"""The experiment's figures as JSON-ready data: the part of `status --json` that the analysis gives.

Key names are stable, because scripts read them. The service adds `state` at the top and `version` in
each arm. A figure that is not defined yet (a mean score with no score, an interval below two units per
arm, the sample-ratio p-value below 8 units per arm) is null, never NaN, so that the output is strict JSON.
The verdict reads the interval alone; `srm` says whether any verdict can be trusted, and the service stops
the experiment on `worse` or on `srm` alike.
"""

from __future__ import annotations

import math

from app.experiment.analysis import ALPHA, MINIMUM_UNITS, Arm, compare, metric, units_needed
from app.experiment.sample_ratio import SRM_ALPHA, sample_ratio_p

METRIC = "liked titles (scored 4 or 5) per recommendation, unscored titles counted as not liked"


def number(value: object) -> float | None:
    finite = float(value)  # type: ignore[arg-type]
    return finite if math.isfinite(finite) else None


def arm_summary(arm: Arm) -> dict:
    scores, recommendations = int(arm.scores), int(arm.recommendations)
    return {
        "units": int(arm.units),
        "recommendations": recommendations,
        "shown": int(arm.shown),
        "scored": int(arm.scored),
        "scored_share": float(arm.scored) / recommendations if recommendations else None,
        "scores": scores,
        "mean_score": float(arm.score_sum) / scores if scores else None,
        "metric": number(metric(arm)[0]) if recommendations else None,
    }


def summary(control: Arm, candidate: Arm, share: float) -> dict:
    """Both arms, the difference (candidate minus control) with its always-valid interval, the checks."""
    comparison = compare(control, candidate)
    lower, upper = number(comparison.lower), number(comparison.upper)
    srm_p = number(sample_ratio_p(control.units, candidate.units, share))
    return {
        "metric_name": METRIC,
        "share": share,
        "arms": {"control": arm_summary(control), "candidate": arm_summary(candidate)},
        "difference": number(comparison.difference),
        "interval": [lower, upper] if lower is not None and upper is not None else None,
        "confidence": 1 - ALPHA,
        "verdict": str(comparison.verdict),
        "minimum_units": MINIMUM_UNITS,
        "units_needed": units_needed(control, candidate, share),
        "srm_p": srm_p,
        "srm": srm_p is not None and srm_p < SRM_ALPHA,
    }
