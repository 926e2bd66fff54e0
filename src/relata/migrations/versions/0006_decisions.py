"""decisions: offers and versions, contact policies, decision log, responses, model state (issue 6)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import relata.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = relata.db.UTCDateTime(timezone=True)


def _offers() -> None:
    op.create_table(
        "offers",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("placements", JSON, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("cap_total", sa.Integer(), nullable=True),
        sa.Column("cap_daily", sa.Integer(), nullable=True),
        sa.Column("starts_at", TIME, nullable=True),
        sa.Column("ends_at", TIME, nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("max_impressions", sa.Integer(), nullable=True),
        sa.Column("impression_window_days", sa.Integer(), nullable=False),
        sa.Column("reject_suppress_days", sa.Integer(), nullable=True),
        sa.Column("suppress_held", sa.String(length=16), nullable=False),
        sa.Column("held_days", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=500), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("key", name=op.f("uq_offers_key")),
    )
    op.create_table(
        "contact_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_contact_policies_name")),
    )
    op.create_table(
        "catalogue_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("changed_by", sa.String(length=200), nullable=True),
        sa.Column("changed_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_versions")),
        sa.UniqueConstraint(
            "entity",
            "entity_id",
            "version",
            name=op.f("uq_catalogue_versions_entity_entity_id_version"),
        ),
    )
    op.create_table(
        "decision_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("catalogue_version", sa.BigInteger(), nullable=False),
        sa.Column("stats_version", sa.BigInteger(), nullable=False),
        sa.Column("model_id", ID, nullable=True),
        sa.Column("landmark", sa.Float(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_state")),
    )


def _log() -> None:
    op.create_table(
        "decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("origin_customer_id", ID, nullable=False),
        sa.Column("anonymous_id", sa.String(length=255), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("placement", sa.String(length=100), nullable=True),
        sa.Column("context", JSON, nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("offers", JSON, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("considered", sa.Integer(), nullable=False),
        sa.Column("excluded", JSON, nullable=False),
        sa.Column("blocked", sa.String(length=200), nullable=True),
        sa.Column("catalogue_version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_decisions_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decisions_customer_created", ["customer_id", "created_at"], unique=False
        )
    op.create_table(
        "decision_responses",
        sa.Column("id", ID, nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("origin_customer_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("event_id", ID, nullable=True),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_decision_responses_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_responses_decision_id_decisions"),
        ),
        sa.ForeignKeyConstraint(
            ["offer_id"], ["offers.id"], name=op.f("fk_decision_responses_offer_id_offers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_responses")),
        sa.UniqueConstraint(
            "decision_id",
            "offer_id",
            "kind",
            name=op.f("uq_decision_responses_decision_id_offer_id_kind"),
        ),
    )
    with op.batch_alter_table("decision_responses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decision_responses_customer_occurred",
            ["customer_id", "occurred_at"],
            unique=False,
        )


def _learning() -> None:
    op.create_table(
        "decision_outcomes",
        sa.Column("id", ID, nullable=False),
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        sa.Column("offer_id", ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("folded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_outcomes")),
        sa.UniqueConstraint(
            "decision_id",
            "offer_id",
            "kind",
            name=op.f("uq_decision_outcomes_decision_id_offer_id_kind"),
        ),
    )
    with op.batch_alter_table("decision_outcomes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decision_outcomes_unfolded",
            ["id"],
            unique=False,
            sqlite_where=sa.text("folded = 0"),
            postgresql_where=sa.text("NOT folded"),
        )
    op.create_table(
        "decision_stats",
        sa.Column("offer_id", ID, nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(length=300), nullable=False),
        sa.Column("shows", sa.Float(), nullable=False),
        sa.Column("wins", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("offer_id", "cell", name=op.f("pk_decision_stats")),
    )
    with op.batch_alter_table("decision_stats", schema=None) as batch_op:
        batch_op.create_index("ix_decision_stats_version", ["version"], unique=False)
    op.create_table(
        "decision_usage",
        sa.Column("scope", sa.String(length=120), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("shows", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day", "control", name=op.f("pk_decision_usage")),
    )
    op.create_table(
        "decision_models",
        sa.Column("id", ID, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_models")),
    )


def upgrade() -> None:
    _offers()
    _log()
    _learning()


def downgrade() -> None:
    for table in (
        "decision_models",
        "decision_usage",
        "decision_stats",
        "decision_outcomes",
        "decision_responses",
        "decisions",
        "decision_state",
        "catalogue_versions",
        "contact_policies",
        "offers",
    ):
        op.drop_table(table)
