"""The 2025 map: zones retired by a remap are kept for history; a delivery keeps the zone it aired in."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("zone_id", sa.String(length=64), nullable=True))
    # Deliveries made before this revision aired in the zone their cluster is in now.
    op.execute(
        "UPDATE deliveries SET zone_id = (SELECT devices.zone_id FROM devices"
        " WHERE devices.id = deliveries.device_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("zone_id")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("retired_at")
