"""Request and response models: they validate at the boundary and feed /openapi.json."""

from __future__ import annotations

from typing import Literal, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from app.model.recommender import GENDERS, MAX_AGE, MAX_RECS, MIN_AGE, OCCUPATIONS
from app.store.recommendation_ids import ID_PATTERN
from app.web.errors import APIError

# Long enough for any title (ml-100k's longest is 81 characters) or password; short enough that no
# valid body, even with every character escaped as a JSON surrogate pair, passes MAX_BODY_BYTES.
MAX_TEXT = 300
# An experiment's unit (SPEC 2 and 9): opaque to the service, so kept to printable ASCII that every log,
# database and regular-expression engine reads alike.
CLIENT_PATTERN = r"^[ -~]{1,64}$"
# The scores a request may bring (SPEC 2): a session's, not a life's.
MAX_RATED = 100


class Strict(BaseModel):
    """No coercion (true is not 1, 30.0 is not 30, "30" is not 30) and no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class LoginRequest(Strict):
    session_password: str = Field(max_length=MAX_TEXT)


class RatedTitle(Strict):
    """A title the person has scored: one of the catalogue's, as /api/recommend answers it (else a 400)."""

    # The catalogue is the serving model's: parse_body's context names it.

    movie: str = Field(max_length=MAX_TEXT, description="a title as /api/recommend answers it")
    score: float = Field(ge=1, le=5, allow_inf_nan=False, description="1 to 5, the ml-100k rating scale")

    @field_validator("movie")
    @classmethod
    def in_the_catalogue(cls, movie: str, info: ValidationInfo) -> str:
        catalogue = (info.context or {}).get("catalogue")
        if catalogue is not None and movie not in catalogue:
            raise PydanticCustomError("unknown_title", "{movie} is not in the catalogue", {"movie": repr(movie)})
        return movie


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
    rated: list[RatedTitle] = Field(
        default=None,
        max_length=MAX_RATED,
        description="the titles this person has scored so far (the page sends those of its session), each once: "
        "the ranking uses them, and none of them is recommended again. A title outside the catalogue, or given "
        "twice, is a 400 naming it",
    )

    @field_validator("rated")
    @classmethod
    def each_title_once(cls, rated: list[RatedTitle]) -> list[RatedTitle]:
        seen = set()
        for entry in rated:
            if entry.movie in seen:
                raise PydanticCustomError("duplicate_title", "{movie} is given twice", {"movie": repr(entry.movie)})
            seen.add(entry.movie)
        return rated


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
    segment: str = Field(
        description="who 'people like you' are: the most specific segment with enough raters, or the people who "
        "gave one of the person's liked titles 4 or 5"
    )
    raters: int = Field(
        ge=0,
        description="users of that segment who rated the title; for a reason from the person's own scores, the "
        "people who gave the person's title 4 or 5",
    )
    positive_share: float = Field(ge=0, le=1, description="the share of those people who gave this title 4 or 5")
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


def parse_body(model: type[RequestModel], context: dict | None = None) -> RequestModel:
    """The JSON body of the current request as a model, or a 4xx whose message names the field at fault. context
    is what the model's validators check against (RatedTitle: the catalogue)."""
    if request.mimetype != "application/json":
        raise APIError("send the body as JSON with Content-Type: application/json", 415)
    try:
        return model.model_validate_json(request.get_data(), context=context)
    except ValidationError as error:
        raise APIError(describe(error.errors()[0])) from error


def describe(problem: dict) -> str:
    field = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "json_invalid":
        return "the body is not valid JSON"
    if problem["type"] == "model_type":
        return f"{field}: must be a JSON object" if field else "the body must be a JSON object"
    if problem["type"] == "extra_forbidden":
        return f"{field}: unknown field"
    if problem["type"] == "missing":
        return f"{field}: required"
    return f"{field}: {problem['msg']}"
