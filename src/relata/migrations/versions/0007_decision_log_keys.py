"""decision log without foreign keys: decisions and decision_responses (issue 6)

relata alone writes these rows, from the customer, decision and offer it has just read
in the same transaction; merge, export and erasure find them by their customer_id
column. The checks cost PostgreSQL a third of a batch of responses.

PostgreSQL drops the constraints in place; SQLite rebuilds both tables (a copy of the
rows: about 15 s for 135,000 decisions and 530,000 responses on the benchmark machine).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = {
    "decision_responses": [
        ("fk_decision_responses_customer_id_customers", "customer_id", "customers"),
        ("fk_decision_responses_decision_id_decisions", "decision_id", "decisions"),
        ("fk_decision_responses_offer_id_offers", "offer_id", "offers"),
    ],
    "decisions": [("fk_decisions_customer_id_customers", "customer_id", "customers")],
}


def upgrade() -> None:
    for table, keys in KEYS.items():
        # SQLite cannot drop a constraint: batch mode rebuilds the table without it.
        with op.batch_alter_table(table) as batch_op:
            for name, _, _ in keys:
                batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, keys in reversed(KEYS.items()):
        with op.batch_alter_table(table) as batch_op:
            for name, column, referred in keys:
                batch_op.create_foreign_key(name, referred, [column], ["id"])
