"""consent ledger, double opt-in tokens, erasure tombstones, retention (issue 3)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import relata.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "consent_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("origin_customer_id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("source_key", sa.String(length=255), nullable=True),
        sa.Column("text_version", sa.String(length=200), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("covers", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_consent_entries_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_entries")),
    )
    with op.batch_alter_table("consent_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_entries_customer_id_id", ["customer_id", "id"], unique=False
        )

    op.create_table(
        "consent_tokens",
        sa.Column("id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("origin_customer_id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("text_version", sa.String(length=200), nullable=True),
        sa.Column("created_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", relata.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_consent_tokens_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["consent_entries.id"],
            name=op.f("fk_consent_tokens_entry_id_consent_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_consent_tokens_token_hash")),
    )
    with op.batch_alter_table("consent_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_tokens_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "erasure_tombstones",
        sa.Column("id", ID, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("created_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_erasure_tombstones_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_tombstones")),
        sa.UniqueConstraint("digest", name=op.f("uq_erasure_tombstones_digest")),
    )

    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_instance_secrets")),
    )

    # Cookie consent on web events: False keeps an event out of profiling.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("profiling", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("profiling")
    op.drop_table("instance_secrets")
    op.drop_table("erasure_tombstones")
    with op.batch_alter_table("consent_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_tokens_customer_id"))
    op.drop_table("consent_tokens")
    with op.batch_alter_table("consent_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_entries_customer_id_id")
    op.drop_table("consent_entries")
