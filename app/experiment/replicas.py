"""Which model each replica serves, as its workers say: what `status` shows beside the experiment's figures.

Each worker that serves requests writes what it serves into EXPERIMENT_DIR/workers/HOST-PID.json whenever that
changes (arms.py). Each replica's mule, at every publication, reads its own host's files, removes those of
workers that are gone, and renews the replica's row in the database (publication.py). `status` shows the
replicas heard from in the last REPLICA_FRESH_SECONDS: one that stopped ages out.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from app.experiment.durable_files import replace_file
from app.store.experiments import PROMOTED, Experiment, record_replica, replicas_seen

WORKERS = "workers"
REPLICA_FRESH_SECONDS = 10
# A replica silent this long is removed from the table (status already leaves it out after REPLICA_FRESH_SECONDS).
FORGET_AFTER = timedelta(hours=1)


def write_worker_report(directory: Path, report: dict) -> None:
    replace_file(directory / WORKERS / f"{socket.gethostname()}-{os.getpid()}.json", json.dumps(report).encode())


def report_replica(engine: Engine, directory: Path) -> None:
    """Renew this replica's row: what each of its living workers serves (each distinct report once)."""
    reports = []
    for path in (directory / WORKERS).glob(f"{socket.gethostname()}-*.json"):
        pid = path.stem.rsplit("-", 1)[1]
        if not pid.isdigit():  # not a worker's report (a staging file being renamed)
            continue
        if not _alive(int(pid)):
            path.unlink(missing_ok=True)
            continue
        try:
            report = json.loads(path.read_bytes())
        except (OSError, ValueError):  # being replaced, or torn by a power cut: the worker writes it again
            continue
        if report not in reports:
            reports.append(report)
    record_replica(engine, socket.gethostname(), reports, forget_before=datetime.now(UTC) - FORGET_AFTER)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def replica_status(engine: Engine, experiment: Experiment | None) -> dict:
    """The replicas heard from lately, and whether a promotion has ended: every replica's ML_MODEL_PATH holds
    another model than the experiment's control (the operator deployed one), which they serve."""
    seen = replicas_seen(engine, since=datetime.now(UTC) - timedelta(seconds=REPLICA_FRESH_SECONDS))
    reports = [report for replica in seen for report in replica["serving"]]
    ended = None
    if experiment is not None and experiment.state == PROMOTED:
        ended = bool(reports) and all(report["control"] != experiment.control_version for report in reports)
    replicas = [
        {"name": replica["name"], "serving": replica["serving"], "seen_at": replica["seen_at"].isoformat()}
        for replica in seen
    ]
    return {"replicas": replicas, "promotion_ended": ended}


def readable_replicas(status: dict) -> str:
    lines = [f"replicas heard from in the last {REPLICA_FRESH_SECONDS} s: {len(status['replicas'])}"]
    for replica in status["replicas"]:
        served = "; ".join(map(describe_report, replica["serving"])) or "no worker has served a request yet"
        lines.append(f"  {replica['name']}: {served}")
    if status["promotion_ended"]:
        lines.append("the promotion has ended: every replica serves the model deployed as ML_MODEL_PATH since")
    return "\n".join(lines)


def describe_report(report: dict) -> str:
    said = f"serves {report['serves'][:12]}"
    if report["candidate"] is not None:
        return said + f", candidate {report['candidate'][:12]} on {report['share']:.0%} of units"
    if report["serves"] != report["control"]:
        return said + f" (promoted over ML_MODEL_PATH's {report['control'][:12]})"
    return said
