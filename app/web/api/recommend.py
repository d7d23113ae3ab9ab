"""POST /api/recommend and POST /api/recommend/score."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify

from app.experiment.arms import Arms
from app.model.recommender import JSON_SEPARATORS
from app.store.journal import JournalUnwritable
from app.store.recommendation_log import RecommendationLog, RecommendationPending, ScoreRejected
from app.web.auth import require_token
from app.web.errors import RETRY_AFTER, APIError
from app.web.schemas import RecommendRequest, RecommendResponse, ScoreRequest, parse_body
from app.web.telemetry import RECOMMENDATIONS, SCORES

bp = Blueprint("recommend", __name__, url_prefix="/api/recommend")


def arms() -> Arms:
    return current_app.extensions["arms"]


def recommendation_log() -> RecommendationLog:
    return current_app.extensions["recommendation_log"]


@bp.post("")
@require_token
def recommend() -> dict | Response:
    asked = parse_body(RecommendRequest, {"catalogue": arms().control.positions})
    rated = {entry.movie: entry.score for entry in asked.rated or ()}
    recommendation_id = recommendation_log().ids.new()
    choice = arms().choose(asked.client or recommendation_id)
    model = choice.model
    g.model_version = model.version
    person = (asked.age, asked.gender, asked.occupation, asked.max_recs)
    if asked.explain:
        titles, reasons_json = model.recommend_with_reasons_json(*person, rated=rated)
    else:
        titles = model.recommend(*person, rated=rated)
    try:
        recommendation_log().record_recommendation(
            **asked.model_dump(),
            titles=titles,
            model_version=model.version,
            recommendation_id=recommendation_id,
            experiment_id=choice.experiment_id,
            arm=choice.arm,
        )
    except JournalUnwritable as error:  # a full disk: the answer was not recorded, so it is not given
        current_app.logger.error("%s", error)
        raise APIError("the service cannot record recommendations now; try again shortly", 503, RETRY_AFTER) from error
    RECOMMENDATIONS.labels(choice.arm or "none").inc()
    answer = RecommendResponse(recommendations=titles, id=recommendation_id).model_dump()
    if asked.explain:
        return with_reasons(answer, reasons_json)
    return answer


def with_reasons(answer: dict, reasons_json: str) -> Response:
    """The answer and its reasons (schemas.ExplainedRecommendResponse), spliced in as the model serialized them
    at load: validating and serializing ten reasons per request took 43 us against 9 us for the plain answer."""
    body = current_app.json.dumps(answer, separators=JSON_SEPARATORS)
    return current_app.response_class(f'{body[:-1]},"reasons":{reasons_json}}}', mimetype="application/json")


@bp.post("/score")
@require_token
def score():
    given = parse_body(ScoreRequest)
    try:
        arm = recommendation_log().record_score(recommendation_id=given.id, movie=given.movie, score=given.score)
    except ScoreRejected as error:
        raise APIError(str(error)) from error
    except RecommendationPending as error:  # genuine, still on its way from a journal: never a 4xx
        raise APIError(f"{error}; try again shortly", 503, RETRY_AFTER) from error
    SCORES.labels(arm or "none").inc()
    return jsonify("Ok")
