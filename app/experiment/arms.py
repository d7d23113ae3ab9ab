"""What a worker serves: the control, and the candidate of a running or promoted experiment.

Each replica's mule writes the experiment's state, and the candidate's files, into a local directory
(publication.py). A thread in every worker looks at that state file a few times a second, loads a new
candidate (checking its signature, candidate_files.py) and only then swaps it in, in one assignment: no request
waits for a load, and the request path makes no system call. Without the database the mule cannot look, and
the workers go on with the arms they last knew. A unit (the request's client key, else the recommendation's id)
is put in an arm by a hash salted with the experiment's id: the same person stays in one arm across workers and
replicas, with no shared state.

A promotion holds until the operator deploys a model: a worker whose ML_MODEL_PATH holds another version than
the experiment's control (a swap, a new image) serves that model, and the promotion has ended there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.experiment.candidate_files import CandidateRefused, load_candidate
from app.experiment.replicas import write_worker_report
from app.model.recommender import Recommender

STATE_FILE_NAME = "state.json"
CONTROL, CANDIDATE = "control", "candidate"
RUNNING, PROMOTED = "running", "promoted"
STATE_FIELDS = ("id", "state", "share", "control_version", "candidate_version", "signature")
# How often each worker's thread looks at the state file: a change is served well within 5 s.
FOLLOW_INTERVAL_SECONDS = 0.25
log = logging.getLogger(__name__)


def in_candidate_arm(experiment_id: int, unit: str, share: float) -> bool:
    """Whether a unit's hash, mapped to [0, 1), falls in the candidate's share."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def read_state(state_file: Path) -> dict | None:
    """The published state; None when there is none, or when it cannot be read (a power cut can leave it empty
    or torn): taken as no experiment, until the next publication rewrites it."""
    try:
        state = json.loads(state_file.read_bytes())
        if not isinstance(state, dict) or not set(STATE_FIELDS) <= set(state):
            raise ValueError(f"not an experiment's state: {str(state)[:80]!r}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s cannot be read (%s): no experiment until the next publication rewrites it", state_file, error)
        return None
    return state


@dataclass(frozen=True)
class Choice:
    """The model that answers a request, and the arm and experiment it is recorded under (None outside one)."""

    model: Recommender
    arm: str | None = None
    experiment_id: int | None = None


@dataclass(frozen=True)
class Followed:
    """The state a worker follows and its candidate, loaded: replaced whole, never changed."""

    state: dict | None = None
    candidate: Recommender | None = None


class Arms:
    def __init__(
        self,
        control: Recommender,
        directory: Path | None,
        signing_key: bytes,
        *,
        follow_every: float | None = FOLLOW_INTERVAL_SECONDS,
    ) -> None:
        """Follows the published state at once (a worker starts serving what it says), then, with follow_every,
        in a thread of its own."""
        self.control = control
        self.directory = directory
        self.signing_key = signing_key
        self.state_file = None if directory is None else directory / STATE_FILE_NAME
        self._followed = Followed()
        self._seen: tuple[int, int, int] | None = None
        self._refusal: str | None = None
        self._serves_requests = False
        self._reported: dict | None = None
        self._following = threading.Lock()  # the thread's look and a caller's take turns; requests never wait
        self.follow()
        if self.state_file is not None and follow_every is not None:
            threading.Thread(target=self._follow_forever, args=(follow_every,), name="arms", daemon=True).start()

    def choose(self, unit: str) -> Choice:
        followed = self._followed
        self._serves_requests = True
        state, candidate = followed.state, followed.candidate
        if candidate is None:
            return Choice(self.control)
        if state["state"] == PROMOTED:
            return Choice(candidate)
        arm = CANDIDATE if in_candidate_arm(state["id"], unit, state["share"]) else CONTROL
        return Choice(candidate if arm == CANDIDATE else self.control, arm, state["id"])

    def serving(self) -> Recommender:
        """The model every request gets outside an experiment's share (the control, or a promoted candidate)."""
        self._serves_requests = True
        return self._serving_model(self._followed)

    def _serving_model(self, followed: Followed) -> Recommender:
        promoted = followed.candidate is not None and followed.state["state"] == PROMOTED
        return followed.candidate if promoted else self.control

    def follow(self) -> None:
        """Take up the published state when its file changed since the last look: a candidate is loaded first,
        then swapped in whole."""
        if self.state_file is None:
            return
        with self._following:
            try:
                status = os.stat(self.state_file)
            except FileNotFoundError:
                return
            if (status.st_ino, status.st_size, status.st_mtime_ns) == self._seen:
                return
            self._seen = (status.st_ino, status.st_size, status.st_mtime_ns)
            self._followed = self._take_up(read_state(self.state_file))

    def report(self) -> None:
        """Tell this replica's mule what this worker serves, once it serves requests and whenever that changes."""
        followed = self._followed
        running = followed.candidate is not None and followed.state["state"] == RUNNING
        report = {
            "control": self.control.version,
            "serves": self._serving_model(followed).version,
            "candidate": followed.candidate.version if running else None,
            "share": followed.state["share"] if running else None,
        }
        if report == self._reported:
            return
        self._reported = report  # tried once per change: a directory the worker cannot write is said once
        try:
            write_worker_report(self.directory, report)
        except OSError as error:
            log.warning("cannot tell the mule what this worker serves (%s): `status` will not show it", error)

    def _take_up(self, state: dict | None) -> Followed:
        if state is None or not self._takes_candidate(state):
            return Followed(state)
        current = self._followed.candidate
        if current is not None and current.version == state["candidate_version"]:
            return Followed(state, current)
        directory = self.state_file.parent
        try:
            candidate = load_candidate(directory, state["candidate_version"], state["signature"], self.signing_key)
        except CandidateRefused as error:
            refusal = f"experiment {state['id']}: the candidate is refused ({error}): serving the control"
            if refusal != self._refusal:  # once, not at every publication that leaves it as it is
                log.error("%s", refusal)
                self._refusal = refusal
            return Followed(None)
        log.info("experiment %s: %s, candidate %s", state["id"], state["state"], state["candidate_version"][:12])
        return Followed(state, candidate)

    def _takes_candidate(self, state: dict) -> bool:
        if state["state"] == RUNNING:
            return True
        # A promotion holds until the operator deploys another model as ML_MODEL_PATH; then that one serves.
        return state["state"] == PROMOTED and state["control_version"] == self.control.version

    def _follow_forever(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            try:
                self.follow()
                if self._serves_requests:
                    self.report()
            except Exception:  # the thread outlives any fault: requests go on with what it had
                log.exception("following the experiment's state failed; trying again")
