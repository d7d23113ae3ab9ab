"""An experiment's units per arm, from the running sums the store keeps as rows arrive (app/store/experiment_sums.py).

A unit is the request's client key, else the recommendation itself. Every recommendation counts from the
moment it is copied into the database, whether or not its scores have come yet: both arms are read at the
same moment, so late scores weigh on them alike. The cost is a few rows, however long the log.
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import Engine

from app.experiment.analysis import Arm
from app.experiment.arms import CANDIDATE, CONTROL
from app.store.experiment_sums import SUMS, arm_sums


def units_by_arm(engine: Engine, experiment_id: int) -> dict[str, Arm]:
    summed = arm_sums(engine, experiment_id)
    nothing = dict.fromkeys(SUMS, 0)
    return {arm: _arm(summed.get(arm, nothing)) for arm in (CONTROL, CANDIDATE)}


def _arm(sums: dict[str, float]) -> Arm:
    # Every field of Arm is a kept sum (a KeyError names one that is not); a sum no field reads is left out.
    return Arm(**{field.name: sums[field.name] for field in fields(Arm)})
