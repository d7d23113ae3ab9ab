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
    # The HMAC of the candidate's files that `start` made (app/experiment/candidate_files.py); added to tables made
    # before it existed, whose rows no worker serves.
    Column("candidate_signature", String(64), nullable=True),
    Column("ranking_gate_skipped", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
    # The running intersection of the experiment's always-valid intervals (app/experiment/analysis.py), which its
    # verdict reads; null until a read counts. Added to tables made before it existed.
    Column("interval_lower", Float, nullable=True),
    Column("interval_upper", Float, nullable=True),
)
# At most one runs: two operators starting one at once cannot both succeed.
Index(
    "one_running_experiment",
    experiments.c.state,
    unique=True,
    postgresql_where=text("state = 'running'"),
    sqlite_where=text("state = 'running'"),
)

# What each replica's workers serve, as its mule last reported it (app/experiment/replicas.py); rows that are not
# renewed age out.
replicas = Table(
    "replicas",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("serving", JSON, nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)
# An experiment's running sums (app/store/experiment_sums.py), kept as its recommendations and scores arrive.
# Per client (a unit: the squares and products of the arm's sums need its figures; a recommendation without a
# client is a unit of its own, with no row here).
experiment_units = Table(
    "experiment_units",
    metadata,
    Column("experiment_id", Integer, primary_key=True),
    Column("arm", String(9), primary_key=True),
    Column("unit", String(64), primary_key=True),
    Column("recommendations", BigInteger, nullable=False),
    Column("liked", BigInteger, nullable=False),
    Column("scored", BigInteger, nullable=False),
)
# Per arm, in shards that `status` adds up (so that concurrent copies and scores seldom wait on one row): the
# fields of app/experiment/analysis.py's Arm, by the same names.
ARM_COUNTS = (
    "units",
    "liked",
    "liked_squares",
    "recommendations",
    "recommendation_squares",
    "liked_times_recommendations",
    "shown",
    "scored",
    "scored_units",
    "scores",
)
experiment_arm_sums = Table(
    "experiment_arm_sums",
    metadata,
    Column("experiment_id", Integer, primary_key=True),
    Column("arm", String(9), primary_key=True),
    Column("shard", Integer, primary_key=True),
    *(Column(name, BigInteger, nullable=False) for name in ARM_COUNTS),
    Column("score_sum", Float, nullable=False),
)
