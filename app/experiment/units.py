"""An experiment's units per arm, from the running sums the store keeps as rows arrive (app/store/experiment_sums.py).

A unit is the request's client key, else the recommendation itself. Every recommendation counts from the
moment it is copied into the database, whether or not its scores have come yet: both arms are read at the
same moment, so late scores weigh on them alike. The cost is a few rows, however long the log.
"""

from __future__ import annotations

from sqlalchemy import Engine

from app.experiment.analysis import Arm
from app.experiment.arms import CANDIDATE, CONTROL
from app.store.experiment_sums import SUMS, arm_sums


def units_by_arm(engine: Engine, experiment_id: int) -> dict[str, Arm]:
    summed = arm_sums(engine, experiment_id)
    nothing = dict.fromkeys(SUMS, 0)
    return {arm: Arm(**summed.get(arm, nothing)) for arm in (CONTROL, CANDIDATE)}
