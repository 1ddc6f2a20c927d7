"""Several controllers (issue 13): leases with fencing tokens, and one claim per schedule occurrence."""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=160), primary_key=True),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "schedule_claims",
        sa.Column("schedule_id", sa.String(length=32), primary_key=True),
        sa.Column("occurrence_at", sa.String(length=32), primary_key=True),
        sa.Column("broadcast_id", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("schedule_claims")
    op.drop_table("leases")
