"""What a worker serves: the control, and the candidate of a running or promoted experiment.

Each replica's mule writes the experiment's state, and the candidate's files, into a local directory
(publication.py); every worker looks at that state file before each recommendation (one stat(2)) and follows
a change at once, with no restart. Without the database the mule cannot look, and the workers go on with the
arms they last knew. A unit (the request's client key, else the recommendation's id) is put in an arm by a
hash salted with the experiment's id: the same person stays in one arm across workers and replicas, with no
shared state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from app.model.model_file import MODEL_FILE_NAME, ModelFileError
from app.model.recommender import Recommender

STATE_FILE_NAME = "state.json"
CANDIDATES = "candidates"
CONTROL, CANDIDATE = "control", "candidate"
RUNNING, PROMOTED = "running", "promoted"
log = logging.getLogger(__name__)


def in_candidate_arm(experiment_id: int, unit: str, share: float) -> bool:
    """Whether a unit's hash, mapped to [0, 1), falls in the candidate's share."""
    digest = hashlib.sha256(f"{experiment_id}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def candidate_path(directory: Path, version: str) -> Path:
    return directory / CANDIDATES / version / MODEL_FILE_NAME


@dataclass(frozen=True)
class Choice:
    """The model that answers a request, and the arm and experiment it is recorded under (None outside one)."""

    model: Recommender
    arm: str | None = None
    experiment_id: int | None = None


class Arms:
    def __init__(self, control: Recommender, directory: Path | None) -> None:
        self.control = control
        self.directory = directory
        self.state_file = None if directory is None else directory / STATE_FILE_NAME
        self._seen: tuple[int, int] | None = None
        self._state: dict | None = None
        self._candidate: Recommender | None = None
        self.follow()

    def choose(self, unit: str) -> Choice:
        self.follow()
        state, candidate = self._state, self._candidate
        if state is None or candidate is None:
            return Choice(self.control)
        if state["state"] == PROMOTED:
            return Choice(candidate)
        arm = CANDIDATE if in_candidate_arm(state["id"], unit, state["share"]) else CONTROL
        return Choice(candidate if arm == CANDIDATE else self.control, arm, state["id"])

    def serving(self) -> Recommender:
        """The model every request gets outside an experiment's share (the control, or a promoted candidate), as
        last followed: no stat(2), so that every route's log line can name it for nothing."""
        promoted = self._state is not None and self._state["state"] == PROMOTED
        return self._candidate if promoted and self._candidate is not None else self.control

    def follow(self) -> None:
        """Take up the published state when it changed since the last look."""
        if self.state_file is None:
            return
        try:
            status = os.stat(self.state_file)
        except FileNotFoundError:
            return
        if (status.st_ino, status.st_mtime_ns) == self._seen:
            return
        self._seen = (status.st_ino, status.st_mtime_ns)
        state = json.loads(self.state_file.read_text(encoding="utf-8"))
        if state["state"] not in (RUNNING, PROMOTED):
            self._state, self._candidate = state, None
            return
        if self._candidate is None or self._candidate.version != state["candidate_version"]:
            try:
                self._candidate = Recommender.load(candidate_path(self.state_file.parent, state["candidate_version"]))
            except ModelFileError as error:  # served as if stopped; publication checked the file, so say it loudly
                log.error("experiment %s: the candidate cannot be served (%s): serving the control", state["id"], error)
                self._state, self._candidate = None, None
                return
            log.info("experiment %s: %s, candidate %s", state["id"], state["state"], state["candidate_version"][:12])
        self._state = state
