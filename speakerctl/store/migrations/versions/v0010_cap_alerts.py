"""CAP alerts (issue 12): a row per CAP message received, a row per broadcast that aired one."""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cap_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=False),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("language", sa.String(length=35), nullable=False, server_default=""),
        sa.Column("event", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("headline", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.Integer(), nullable=True),
        sa.Column("targets", sa.String(length=4000), nullable=False, server_default=""),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False, server_default=""),
        sa.Column("bulletin_id", sa.Integer(), nullable=True),
        sa.Column("next_air_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items", sa.String(length=500), nullable=False, server_default=""),
        sa.UniqueConstraint("sender", "identifier", "sent", name="uq_cap_alerts_key"),
    )
    op.create_table(
        "cap_airings",
        sa.Column("broadcast_id", sa.String(length=64), primary_key=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("cap_alerts.id"), nullable=False),
        sa.Column("aired_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cap_airings_alert_id", "cap_airings", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_cap_airings_alert_id", table_name="cap_airings")
    op.drop_table("cap_airings")
    op.drop_table("cap_alerts")
