"""Relay schedules (issue 10): a schedule may relay a station's stream URL for a duration."""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("speakerctl_schedules") as batch:
        batch.add_column(sa.Column("relay_url", sa.String(length=500), nullable=False, server_default=""))
        batch.add_column(sa.Column("relay_for_s", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("speakerctl_schedules") as batch:
        batch.drop_column("relay_for_s")
        batch.drop_column("relay_url")
