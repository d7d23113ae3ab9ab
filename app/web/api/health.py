"""GET / and GET /health."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy.exc import OperationalError

from app.model.recommender import Recommender
from app.web.schemas import HealthResponse, Message

bp = Blueprint("health", __name__)

WELCOME = "Movie recommendations for new users: POST /api/login, then POST /api/recommend. See /openapi.json."
# A request the model must be able to answer for the service to count as healthy.
PROBE = {"age": 30, "gender": "O", "occupation": "other", "max_recs": 1}


@bp.get("/")
def welcome() -> dict:
    return Message(message=WELCOME).model_dump()


@bp.get("/health")
def health() -> tuple[dict, int]:
    arms = current_app.extensions["arms"]
    arms.follow()
    recommender: Recommender = arms.serving()
    model_ok = _model_answers(recommender)
    try:
        current_app.extensions["recommendation_log"].ping()
        database_ok = True
    except OperationalError:
        database_ok = False
    healthy = model_ok and database_ok
    report = HealthResponse(
        status="ok" if healthy else "unavailable",
        model="ok" if model_ok else "unavailable",
        model_version=recommender.version,
        database="ok" if database_ok else "unavailable",
    )
    return report.model_dump(), 200 if healthy else 503


def _model_answers(recommender: Recommender) -> bool:
    try:
        return len(recommender.recommend(**PROBE)) == 1
    except Exception:  # whatever broke, the answer is "not healthy", and the log says why
        current_app.logger.exception("the model failed its health probe")
        return False
