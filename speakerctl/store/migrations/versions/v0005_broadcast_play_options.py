"""A broadcast keeps its play command's start, volume and preemption policy, and who sent it."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("start_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("volume", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("on_preempt", sa.String(length=16), nullable=False, server_default="drop"))
        batch.add_column(sa.Column("owner", sa.String(length=128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("owner")
        batch.drop_column("on_preempt")
        batch.drop_column("volume")
        batch.drop_column("start_at")
