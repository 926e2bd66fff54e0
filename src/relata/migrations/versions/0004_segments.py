"""rules and segments: definitions, versions, memberships (issue 5)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import relata.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("created_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", relata.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "segment_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rule", JSON, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_versions_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_versions")),
        sa.UniqueConstraint(
            "segment_id", "version", name=op.f("uq_segment_versions_segment_id_version")
        ),
    )
    op.create_table(
        "segment_memberships",
        sa.Column("id", ID, nullable=False),
        sa.Column("segment_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entered_at", relata.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", relata.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_segment_memberships_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["segments.id"],
            name=op.f("fk_segment_memberships_segment_id_segments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segment_memberships")),
    )
    with op.batch_alter_table("segment_memberships", schema=None) as batch_op:
        batch_op.create_index(
            "uq_segment_memberships_open",
            ["segment_id", "customer_id"],
            unique=True,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )
        batch_op.create_index(
            "ix_segment_memberships_customer_open",
            ["customer_id"],
            unique=False,
            sqlite_where=sa.text("left_at IS NULL"),
            postgresql_where=sa.text("left_at IS NULL"),
        )

    # Segments' conditions over events (see relata.segments.models).
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_name_occurred_at",
            ["name", "occurred_at", "customer_id", "profiling"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_name_occurred_at")
    with op.batch_alter_table("segment_memberships", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_memberships_customer_open")
        batch_op.drop_index("uq_segment_memberships_open")
    op.drop_table("segment_memberships")
    op.drop_table("segment_versions")
    op.drop_table("segments")
