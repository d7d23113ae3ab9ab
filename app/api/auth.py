"""POST /api/login and GET /protected."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from app.auth import count_login_attempt, issue_token, password_matches, require_token
from app.errors import APIError
from app.schemas import LoginRequest, Message, TokenResponse, parse_body

bp = Blueprint("auth", __name__)


@bp.post("/api/login")
def login() -> dict:
    count_login_attempt()
    body = parse_body(LoginRequest)
    if not password_matches(body.session_password, current_app.config["SESSION_PASSWORD"]):
        current_app.logger.warning("refused login from %s: wrong password", request.remote_addr)
        raise APIError("wrong password", 401)
    return TokenResponse(access_token=issue_token()).model_dump()


@bp.get("/protected")
@require_token
def protected() -> dict:
    return Message(message="Protected").model_dump()
