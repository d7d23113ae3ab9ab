"""POST /api/login and GET /protected."""

from __future__ import annotations

from flask import Blueprint, current_app

from app.web.auth import client_address, issue_token, login_limit, password_matches, require_token
from app.web.errors import APIError
from app.web.schemas import LoginRequest, Message, TokenResponse, parse_body

bp = Blueprint("auth", __name__)


@bp.post("/api/login")
def login() -> dict:
    address = client_address()
    login_limit().check(address)
    body = parse_body(LoginRequest)
    if not password_matches(body.session_password, current_app.config["SESSION_PASSWORD"]):
        login_limit().count_failure(address)
        current_app.logger.warning("refused login from %s: wrong password", address)
        raise APIError("wrong password", 401)
    return TokenResponse(access_token=issue_token()).model_dump()


@bp.get("/protected")
@require_token
def protected() -> dict:
    return Message(message="Protected").model_dump()
