"""Schema version 2 (main before Alembic): device telemetry columns, alerts, the audit log."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("temperature_c", sa.Float(), nullable=True))
        batch.add_column(sa.Column("storage_free_mb", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("clock_offset_ms", sa.BigInteger(), nullable=True))
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_alerts_closed_at"), "alerts", ["closed_at"], unique=False)
    op.create_index(op.f("ix_alerts_device_id"), "alerts", ["device_id"], unique=False)
    op.create_index(op.f("ix_alerts_kind"), "alerts", ["kind"], unique=False)
    op.create_index(
        "ix_alerts_one_open",
        "alerts",
        ["kind", "device_id"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"], unique=False)
    op.create_index(op.f("ix_audit_device_id"), "audit", ["device_id"], unique=False)
    op.execute("UPDATE schema_version SET version = 2")


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("alerts")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("temperature_c")
        batch.drop_column("storage_free_mb")
        batch.drop_column("clock_offset_ms")
    op.execute("UPDATE schema_version SET version = 1")
