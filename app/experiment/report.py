"""What `status` says, and the guardrail that stops a candidate people like less.

Both read the experiment's units from its running sums (units.py) and its statistics (analysis.py, sample_ratio.py).
The guardrail runs in every replica's mule; the stop is one conditional update, so when several decide at
once one of them stops it and logs the one ERROR line, which monitor-docker.py mails.
"""

from __future__ import annotations

import json
import logging
import math

from sqlalchemy import Engine

from app.experiment.analysis import compare, narrowed
from app.experiment.arms import CANDIDATE, CONTROL
from app.experiment.summary import summary
from app.experiment.units import units_by_arm
from app.store.experiments import (
    RUNNING,
    STOPPED,
    Bounds,
    Experiment,
    ExperimentError,
    end_experiment,
    latest_experiment,
    narrow_interval,
)

log = logging.getLogger("app.experiment")


def experiment_status(engine: Engine, experiment: Experiment) -> dict:
    """The figures of `status --json`: the experiment's record, each arm's figures, the difference, the verdict.

    Every read narrows the running interval kept with the record (what the verdict reads), so that what one
    read said, no later one withdraws.
    """
    arms = units_by_arm(engine, experiment.id)
    comparison = compare(arms[CONTROL], arms[CANDIDATE])

    def narrow(stored: Bounds) -> Bounds:
        lower, upper = narrowed(*(math.nan if bound is None else bound for bound in stored), comparison)
        return tuple(None if math.isnan(bound) else float(bound) for bound in (lower, upper))

    running = tuple(math.nan if bound is None else bound for bound in narrow_interval(engine, experiment.id, narrow))
    figures = summary(arms[CONTROL], arms[CANDIDATE], experiment.share, comparison, running)
    versions = {CONTROL: experiment.control_version, CANDIDATE: experiment.candidate_version}
    figures["arms"] = [{"name": name, "version": versions[name], **arm} for name, arm in figures["arms"].items()]
    return {
        "id": experiment.id,
        "state": experiment.state,
        "share": experiment.share,
        "started_at": experiment.started_at.isoformat(),
        "ended_at": experiment.ended_at.isoformat() if experiment.ended_at else None,
        "reason": experiment.reason,
        "ranking_gate_skipped": experiment.ranking_gate_skipped,
        **figures,
    }


def status_report(engine: Engine, *, as_json: bool) -> str:
    experiment = latest_experiment(engine)
    if experiment is None:
        return json.dumps({"state": None}) if as_json else "no experiment has run"
    status = experiment_status(engine, experiment)
    return json.dumps(status, indent=1) if as_json else readable(status)


def readable(status: dict) -> str:
    gate = " (the ranking gate was skipped)" if status["ranking_gate_skipped"] else ""
    lines = [
        f"experiment {status['id']}: {status['state']}, candidate share {status['share']:.0%}{gate}"
        + (f"; {status['reason']}" if status["reason"] else ""),
        # scored: units, then recommendations, with at least one score
        f"{'arm':10} {'version':13} {'units':>7} {'scored':>7} {'recs':>7} {'scored':>7} {'scores':>7} {'mean':>6} "
        f"{'liked/rec':>9}",
    ]
    for arm in status["arms"]:
        mean = "-" if arm["mean_score"] is None else f"{arm['mean_score']:.2f}"
        liked = "-" if arm["metric"] is None else f"{arm['metric']:.3f}"
        lines.append(
            f"{arm['name']:10} {arm['version'][:12]:13} {arm['units']:7d} {arm['scored_units']:7d} "
            f"{arm['recommendations']:7d} {arm['scored']:7d} {arm['scores']:7d} {mean:>6} {liked:>9}"
        )
    lines.append(describe_verdict(status))
    return "\n".join(lines)


def describe_verdict(status: dict) -> str:
    said = f"verdict: {status['verdict']}"
    if status["difference"] is not None:
        said += f"; candidate minus control {status['difference']:+.3f} liked titles per recommendation"
    interval = status["interval"]
    if interval is not None:
        said += f", always-valid 95% interval over every read [{interval[0]:+.3f}, {interval[1]:+.3f}]"
    if status["verdict"] == "undecided":
        needed = status["units_needed"]
        said += "; more units needed: " + ("unknown" if needed is None else f"about {needed}")
    said += f"; sample ratio p = {status['srm_p']:.3g}"
    return said + (" (MISMATCH)" if status["srm"] else "")


def guard(engine: Engine, experiment: Experiment) -> None:
    """Stop a running experiment whose candidate is worse, or whose arms' sizes are off the share."""
    if experiment.state != RUNNING:
        return
    status = experiment_status(engine, experiment)
    if status["verdict"] == "worse":
        reason = "the candidate is worse: " + describe_verdict(status).removeprefix("verdict: worse; ")
    elif status["srm"]:
        reason = f"sample ratio mismatch (p = {status['srm_p']:.3g}): the assignment or the log is broken"
    else:
        return
    try:
        end_experiment(engine, experiment.id, STOPPED, f"stopped by its guardrail: {reason}")
    except ExperimentError:  # another replica's mule stopped it first, and said so
        return
    log.error("experiment %s stopped by its guardrail: %s; every replica returns to the control", experiment.id, reason)
