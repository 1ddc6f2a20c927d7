"""A broadcast records the user who started it and the one who stopped it (state `stopped`)."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("started_by", sa.String(length=128), nullable=False, server_default=""))
        batch.add_column(sa.Column("stopped_by", sa.String(length=128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("stopped_by")
        batch.drop_column("started_by")
