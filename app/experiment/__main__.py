"""Try a candidate model on a share of live traffic: start, watch, promote or stop, and undo a promotion.

python -m app.experiment start CANDIDATE [--share 0.5] [--test-data FILE] [--skip-ranking-gate]
python -m app.experiment status [--json]
python -m app.experiment promote [--force]
python -m app.experiment stop
python -m app.experiment rollback

Run with the service's own settings (its environment: DATABASE_URL, ML_MODEL_PATH, JWT_SECRET_KEY, ...), on
any replica or beside them: `docker exec <container> python -m app.experiment status`. The record lives in the
database, and every worker of every replica follows it within seconds (app/experiment/arms.py). `start` signs
the candidate with a key derived from JWT_SECRET_KEY, and workers load nothing else. A promotion holds until
the operator deploys a model as ML_MODEL_PATH (deploy/swap-model, a new image), which is then served.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from app.config import Settings
from app.experiment.candidate_files import signature
from app.experiment.replicas import readable_replicas, replica_status
from app.experiment.report import experiment_status, status_report
from app.model.model_file import METADATA_FILE_NAME, MODEL_FILE_NAME, ModelFileError, install
from app.model.recommender import Recommender
from app.store.experiments import (
    PROMOTED,
    RUNNING,
    STOPPED,
    Experiment,
    ExperimentError,
    end_experiment,
    latest_experiment,
    roll_back,
)
from app.store.experiments import start_experiment as record_start
from app.training.train import TEST_DATA_FILE_NAME

log = logging.getLogger("app.experiment")
ROOT = Path(__file__).resolve().parents[2]
ACCURACY_GATE = ROOT / "tests" / "run_accuracy_tests.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.experiment", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    starting = commands.add_parser("start", help="check CANDIDATE, then give it a share of traffic")
    starting.add_argument("candidate", type=Path, help="a model.pkl (model.json beside it) or a .tar.gz holding them")
    starting.add_argument("--share", type=share_of_traffic, default=0.5, help="the candidate's share, 0 < share < 1")
    starting.add_argument("--test-data", type=Path, help=f"the candidate's {TEST_DATA_FILE_NAME} (default: beside it)")
    starting.add_argument(
        "--skip-ranking-gate", action="store_true", help="let a candidate that only the ranking gate refuses in"
    )
    status = commands.add_parser(
        "status", help="each arm's figures, the difference and the verdict, and which model each replica serves"
    )
    status.add_argument("--json", action="store_true", help="as JSON, for scripts")
    promoting = commands.add_parser(
        "promote", help="every replica serves the candidate for all traffic, until a model is deployed"
    )
    promoting.add_argument("--force", action="store_true", help="promote although the verdict is not `better`")
    commands.add_parser("stop", help="every replica serves the control only")
    commands.add_parser("rollback", help="undo a promotion: every replica serves the control again")
    args = parser.parse_args(argv)
    from main import app  # the service as configured, or exit with its one line saying what to fix

    engine = app.extensions["recommendation_log"].engine
    try:
        if args.command == "start":
            arms = app.extensions["arms"]
            return start(engine, arms.control, arms.signing_key, args)
        if args.command == "status":
            print(full_status(engine, as_json=args.json))
            return 0
        if args.command == "rollback":
            return rollback(engine)
        running = latest_experiment(engine)
        if running is None or running.state != RUNNING:
            raise ExperimentError("no experiment is running")
        if args.command == "stop":
            end_experiment(engine, running.id, STOPPED, "stopped by the operator")
            print(f"experiment {running.id} stopped: every replica follows within 5 s")
            return 0
        return promote(engine, running, force=args.force)
    except ExperimentError as error:
        print(f"experiment: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def full_status(engine: Engine, *, as_json: bool) -> str:
    """The experiment's figures, then which model each replica serves (and whether a promotion has ended)."""
    experiment_report = status_report(engine, as_json=as_json)
    replicas = replica_status(engine, latest_experiment(engine))
    if as_json:
        return json.dumps({**json.loads(experiment_report), **replicas}, indent=1)
    return f"{experiment_report}\n{readable_replicas(replicas)}"


def rollback(engine: Engine) -> int:
    promoted = latest_experiment(engine)
    if promoted is None or promoted.state != PROMOTED:
        raise ExperimentError("no experiment is promoted: there is nothing to roll back")
    roll_back(engine, promoted.id, "rolled back by the operator")
    print(
        f"experiment {promoted.id} rolled back: every replica serves its own ML_MODEL_PATH "
        f"(the control, {promoted.control_version[:12]}) within 5 s"
    )
    return 0


def promote(engine: Engine, running: Experiment, *, force: bool) -> int:
    """Promote a candidate found `better`; any other verdict only with --force, and the command says which."""
    verdict = experiment_status(engine, running)["verdict"]
    if verdict != "better" and not force:
        raise ExperimentError(
            f"experiment {running.id}'s verdict is {verdict}, not better: nothing changed "
            "(promote --force promotes it all the same)"
        )
    forced = "" if verdict == "better" else " (--force)"
    end_experiment(engine, running.id, PROMOTED, f"promoted by the operator, verdict {verdict}{forced}")
    print(f"experiment {running.id} promoted, verdict {verdict}{forced}: every replica follows within 5 s")
    return 0


def share_of_traffic(value: str) -> float:
    share = float(value)
    if not 0 < share < 1:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1 (exclusive)")
    return share


def start(engine: Engine, control: Recommender, signing_key: bytes, args: argparse.Namespace) -> int:
    if Settings.from_environ().jwt_secret_generated:
        raise ExperimentError("JWT_SECRET_KEY is not set: set the service's own, whose key signs the candidate")
    latest = latest_experiment(engine)
    if latest is not None and latest.state == PROMOTED and latest.control_version == control.version:
        raise ExperimentError(
            f"experiment {latest.id} promoted model {latest.candidate_version[:12]}: serve it as ML_MODEL_PATH "
            "(deploy/swap-model, or an image built with it), or roll it back, before trying another"
        )
    with tempfile.TemporaryDirectory(prefix="candidate-") as staging:
        try:
            candidate = checked_candidate(args.candidate, Path(staging), args.test_data, args.skip_ranking_gate)
        except ExperimentError as error:
            print(f"experiment: refused, nothing changed: {error}", file=sys.stderr)
            return 1
        model = (Path(staging) / MODEL_FILE_NAME).read_bytes()
        metadata = (Path(staging) / METADATA_FILE_NAME).read_text(encoding="utf-8")
        experiment_id = record_start(
            engine,
            share=args.share,
            control_version=control.version,
            candidate_version=candidate.version,
            candidate_model=model,
            candidate_metadata=metadata,
            candidate_signature=signature(signing_key, model, metadata.encode()),
            ranking_gate_skipped=args.skip_ranking_gate,
        )
    print(
        f"experiment {experiment_id} started: candidate {candidate.version[:12]} takes {args.share:.0%} of traffic "
        f"beside {control.version[:12]}; every replica follows within 5 s"
    )
    return 0


def checked_candidate(source: Path, staging: Path, test_data: Path | None, skip_ranking_gate: bool) -> Recommender:
    """The candidate, once its SHA-256 matches its model.json, it loads, and it passes the accuracy gate."""
    try:
        model_path = install(source, staging)
        if not (staging / METADATA_FILE_NAME).is_file():
            raise ExperimentError(f"{source} comes without {METADATA_FILE_NAME}: its SHA-256 cannot be checked")
        candidate = Recommender.load(model_path)
    except ModelFileError as error:
        raise ExperimentError(str(error)) from error
    test_data = test_data or source.with_name(TEST_DATA_FILE_NAME)
    gate = [sys.executable, str(ACCURACY_GATE), str(model_path), str(test_data)]
    checked = subprocess.run(gate + ["--skip-ranking-gate"] * skip_ranking_gate, capture_output=True, text=True)
    if checked.returncode != 0:
        raise ExperimentError(checked.stderr.strip().splitlines()[-1] if checked.stderr.strip() else "the gate failed")
    ignored = [line for line in checked.stderr.splitlines() if "IGNORED" in line]
    if ignored:
        log.warning("the candidate takes traffic although the %s", ignored[0])
    return candidate


if __name__ == "__main__":
    sys.exit(main())
