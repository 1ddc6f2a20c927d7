"""Live streams (issue 10): a row per stream and one per targeted cluster."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_streams",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("targets", sa.String(length=2000), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("frames", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "live_clusters",
        sa.Column("stream_id", sa.String(length=64), sa.ForeignKey("live_streams.id"), primary_key=True),
        sa.Column("device_id", sa.String(length=64), primary_key=True),
        sa.Column("skipped", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("played", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lost", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("underruns", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("forged", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("live_clusters")
    op.drop_table("live_streams")
