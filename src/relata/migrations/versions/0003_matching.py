"""probabilistic matching: models, review queue, rejected pairs (issue 4)

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import relata.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, relata.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "match_models",
        sa.Column("id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _time("trained_at"),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("splink", _JSON, nullable=False),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("stats", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_models")),
        sa.UniqueConstraint("version", name=op.f("uq_match_models_version")),
    )
    op.create_table(
        "match_reviews",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_a_id", _ID, nullable=False),
        sa.Column("customer_b_id", _ID, nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("explanation", _JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("merge_id", _ID, nullable=True),
        _time("created_at"),
        _time("decided_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_a_id"],
            ["customers.id"],
            name=op.f("fk_match_reviews_customer_a_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_b_id"],
            ["customers.id"],
            name=op.f("fk_match_reviews_customer_b_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["merge_id"], ["merges.id"], name=op.f("fk_match_reviews_merge_id_merges")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_reviews")),
        sa.UniqueConstraint(
            "customer_a_id",
            "customer_b_id",
            name=op.f("uq_match_reviews_customer_a_id_customer_b_id"),
        ),
    )
    with op.batch_alter_table("match_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_match_reviews_customer_b_id"), ["customer_b_id"], unique=False
        )
        batch_op.create_index("ix_match_reviews_status_id", ["status", "id"], unique=False)
    op.create_table(
        "match_rejections",
        sa.Column("id", _ID, nullable=False),
        sa.Column("customer_a_id", _ID, nullable=False),
        sa.Column("customer_b_id", _ID, nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["customer_a_id"],
            ["customers.id"],
            name=op.f("fk_match_rejections_customer_a_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_b_id"],
            ["customers.id"],
            name=op.f("fk_match_rejections_customer_b_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_rejections")),
        sa.UniqueConstraint(
            "customer_a_id",
            "customer_b_id",
            name=op.f("uq_match_rejections_customer_a_id_customer_b_id"),
        ),
    )
    with op.batch_alter_table("match_rejections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_match_rejections_customer_b_id"), ["customer_b_id"], unique=False
        )
    op.create_table(
        "match_keys",
        sa.Column("key_hash", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("key_hash", "customer_id", name=op.f("pk_match_keys")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("match_keys")
    with op.batch_alter_table("match_rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_match_rejections_customer_b_id"))
    op.drop_table("match_rejections")
    with op.batch_alter_table("match_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_match_reviews_status_id")
        batch_op.drop_index(batch_op.f("ix_match_reviews_customer_b_id"))
    op.drop_table("match_reviews")
    op.drop_table("match_models")
