"""The experiment's figures as JSON-ready data: the part of `status --json` that the analysis gives.

Key names are stable, because scripts read them. The service adds `state` at the top and `version` in
each arm. A figure that is not defined yet (a mean score with no score, an interval below two units per
arm, the running interval before any read counted) is null, never NaN, so that the output is strict JSON. `interval` is
the running intersection of the experiment's intervals, the one the verdict reads, so that a verdict once
reached stays; `latest_interval` is this read's own. `srm` says whether any verdict can be trusted, and the
service stops the experiment on `worse` or on `srm` alike.
"""

from __future__ import annotations

import math

from app.experiment.analysis import (
    ALPHA,
    MINIMUM_SCORED_UNITS,
    MINIMUM_UNITS,
    Arm,
    Comparison,
    metric,
    units_needed,
    verdict,
)
from app.experiment.sample_ratio import mismatched, sample_ratio_p

METRIC = "liked titles (scored 4 or 5) per recommendation, unscored titles counted as not liked"


def number(value: object) -> float | None:
    finite = float(value)  # type: ignore[arg-type]
    return finite if math.isfinite(finite) else None


def arm_summary(arm: Arm) -> dict:
    scores, recommendations = int(arm.scores), int(arm.recommendations)
    return {
        "units": int(arm.units),
        "scored_units": int(arm.scored_units),
        "recommendations": recommendations,
        "shown": int(arm.shown),
        "scored": int(arm.scored),
        "scored_share": float(arm.scored) / recommendations if recommendations else None,
        "scores": scores,
        "mean_score": float(arm.score_sum) / scores if scores else None,
        "metric": number(metric(arm)[0]) if recommendations else None,
    }


def interval(lower: object, upper: object) -> list[float] | None:
    bounds = [number(lower), number(upper)]
    return None if None in bounds else bounds


def summary(control: Arm, candidate: Arm, share: float, comparison: Comparison, running: tuple[float, float]) -> dict:
    """Both arms, the difference (candidate minus control) with its always-valid intervals, the checks.

    `comparison` is compare(control, candidate); `running` the running interval's bounds after this read
    (analysis.narrowed; nan before any read counted).
    """
    running_verdict = str(verdict(*running))
    srm_p = float(sample_ratio_p(control.units, candidate.units, share))
    return {
        "metric_name": METRIC,
        "share": share,
        "arms": {"control": arm_summary(control), "candidate": arm_summary(candidate)},
        "difference": number(comparison.difference),
        "interval": interval(*running),
        "latest_interval": interval(comparison.lower, comparison.upper),
        "confidence": 1 - ALPHA,
        "verdict": running_verdict,
        "minimum_units": MINIMUM_UNITS,
        "minimum_scored_units": MINIMUM_SCORED_UNITS,
        "units_needed": 0 if running_verdict != "undecided" else units_needed(control, candidate, share),
        "srm_p": srm_p,
        "srm": bool(mismatched(srm_p)),
    }
