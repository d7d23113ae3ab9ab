"""The schema: every table of the service's database, in one place."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
    text,
)

metadata = MetaData()

recommendations = Table(
    "recommendations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("age", Integer, nullable=False),
    Column("gender", String(1), nullable=False),
    Column("occupation", String(32), nullable=False),
    Column("max_recs", Integer, nullable=False),
    Column("titles", JSON, nullable=False),
    Column("model_version", String(64), nullable=False),
    # Whether the answer gave reasons (the request's explain); added to tables made before reasons existed.
    Column("explain", Boolean, nullable=False, server_default=false()),
    # The request's client key (an experiment's unit), when it sent one; added to tables made before it existed.
    Column("client", String(64), nullable=True),
    # The experiment that took the request and the arm that answered it ("control" or "candidate"); none
    # outside an experiment. Added to tables made before experiments existed.
    Column("experiment_id", Integer, nullable=True),
    Column("arm", String(9), nullable=True),
    # The scores the request brought ([{"movie", "score"}], warm start); none without. Added to older tables.
    Column("rated", JSON(none_as_null=True), nullable=True),
)

scores = Table(
    "scores",
    metadata,
    Column("recommendation_id", String(32), ForeignKey("recommendations.id"), primary_key=True),
    Column("movie", String(1000), primary_key=True),
    Column("score", Float, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
)

# How far each recommendation journal file has been copied into the tables above.
journal_offsets = Table(
    "journal_offsets",
    metadata,
    Column("file", String(200), primary_key=True),
    Column("offset", BigInteger, nullable=False),
)

# Which candidate model took which share of traffic, and what became of it (app/store/experiments.py). The
# database is the one store every replica shares, so the candidate's model.pkl and model.json travel in the row.
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("state", String(16), nullable=False),
    Column("share", Float, nullable=False),
    Column("control_version", String(64), nullable=False),
    Column("candidate_version", String(64), nullable=False),
    Column("candidate_model", LargeBinary, nullable=False),
    Column("candidate_metadata", Text, nullable=True),
    Column("ranking_gate_skipped", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
)
# At most one runs: two operators starting one at once cannot both succeed.
Index(
    "one_running_experiment",
    experiments.c.state,
    unique=True,
    postgresql_where=text("state = 'running'"),
    sqlite_where=text("state = 'running'"),
)
