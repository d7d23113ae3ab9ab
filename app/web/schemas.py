"""Request and response models: they validate at the boundary and feed /openapi.json."""

from __future__ import annotations

from typing import Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.model.recommender import GENDERS, MAX_AGE, MAX_RECS, MIN_AGE, OCCUPATIONS
from app.store.recommendation_ids import ID_PATTERN
from app.web.errors import APIError

# Long enough for any title (ml-100k's longest is 81 characters) or password; short enough that no
# valid body, even with every character escaped as a JSON surrogate pair, passes MAX_BODY_BYTES.
MAX_TEXT = 300
# An experiment's unit (SPEC 2 and 9): opaque to the service, so kept to printable ASCII that every log,
# database and regular-expression engine reads alike.
CLIENT_PATTERN = r"^[ -~]{1,64}$"


class Strict(BaseModel):
    """No coercion (true is not 1, 30.0 is not 30, "30" is not 30) and no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class LoginRequest(Strict):
    session_password: str = Field(max_length=MAX_TEXT)


class RecommendRequest(Strict):
    age: int = Field(ge=MIN_AGE, le=MAX_AGE)
    gender: Literal[GENDERS] = Field(description="M, F or O (scored as the mean of M and F)")
    occupation: Literal[OCCUPATIONS]
    max_recs: int = Field(default=10, ge=1, le=MAX_RECS)
    explain: bool = Field(default=False, description="also answer reasons: why each title")
    # Absent means none (the default is not validated); null is refused, as for every other field.
    client: str = Field(
        default=None,
        pattern=CLIENT_PATTERN,
        description="1-64 printable ASCII characters that stay the same for one person (the page keeps a random "
        "one): an experiment's unit, so that a person stays in one arm. The answer does not change with it",
    )


class ScoreRequest(Strict):
    id: str = Field(pattern=ID_PATTERN, description="an id that /api/recommend returned: 32 lowercase hex digits")
    movie: str = Field(max_length=MAX_TEXT, description="one of the titles returned with that id")
    score: float = Field(ge=1, le=5, allow_inf_nan=False, description="1 to 5, the ml-100k rating scale")


class Message(Strict):
    message: str


class TokenResponse(Strict):
    access_token: str


class RecommendResponse(Strict):
    recommendations: list[str]
    id: str = Field(pattern=ID_PATTERN)


class Reason(Strict):
    """Why a title: how people like the person rated it, counted in the data the model was trained on."""

    text: str = Field(description="one sentence a person reads")
    segment: str = Field(description="who 'people like you' are: the most specific segment with enough raters")
    raters: int = Field(ge=0, description="users of that segment who rated the title")
    positive_share: float = Field(ge=0, le=1, description="the share of those raters who gave it 4 or 5")
    genres: list[str] = Field(description="the title's genres in u.item")
    year: int | None = Field(description="the year in the title, null when it has none")


class ExplainedRecommendResponse(RecommendResponse):
    reasons: list[Reason] = Field(description="one per title, in the same order")


class HealthResponse(Strict):
    status: Literal["ok", "unavailable"]
    model: Literal["ok", "unavailable"]
    model_version: str = Field(description="SHA-256 of the model.pkl being served")
    database: Literal["ok", "unavailable"]


RequestModel = TypeVar("RequestModel", bound=Strict)


def parse_body(model: type[RequestModel]) -> RequestModel:
    """The JSON body of the current request as a model, or a 4xx whose message names the field at fault."""
    if request.mimetype != "application/json":
        raise APIError("send the body as JSON with Content-Type: application/json", 415)
    try:
        return model.model_validate_json(request.get_data())
    except ValidationError as error:
        raise APIError(describe(error.errors()[0])) from error


def describe(problem: dict) -> str:
    field = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "json_invalid":
        return "the body is not valid JSON"
    if problem["type"] == "model_type":
        return "the body must be a JSON object"
    if problem["type"] == "extra_forbidden":
        return f"{field}: unknown field"
    if problem["type"] == "missing":
        return f"{field}: required"
    return f"{field}: {problem['msg']}"
