"""POST /api/recommend and POST /api/recommend/score."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from app.auth import require_token
from app.errors import APIError
from app.recommender import Recommender
from app.schemas import RecommendRequest, RecommendResponse, ScoreRequest, parse_body
from app.store import RecommendationLog, ScoreRejected
from app.telemetry import RECOMMENDATIONS, SCORES

bp = Blueprint("recommend", __name__, url_prefix="/api/recommend")


def recommender() -> Recommender:
    return current_app.extensions["recommender"]


def recommendation_log() -> RecommendationLog:
    return current_app.extensions["recommendation_log"]


@bp.post("")
@require_token
def recommend() -> dict:
    asked = parse_body(RecommendRequest)
    model = recommender()
    titles = model.recommend(asked.age, asked.gender, asked.occupation, asked.max_recs)
    recommendation_id = recommendation_log().record_recommendation(
        **asked.model_dump(), titles=titles, model_version=model.version
    )
    RECOMMENDATIONS.inc()
    return RecommendResponse(recommendations=titles, id=recommendation_id).model_dump()


@bp.post("/score")
@require_token
def score():
    given = parse_body(ScoreRequest)
    try:
        recommendation_log().record_score(recommendation_id=given.id, movie=given.movie, score=given.score)
    except ScoreRejected as error:
        raise APIError(str(error)) from error
    SCORES.inc()
    return jsonify("Ok")
