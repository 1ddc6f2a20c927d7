"""The schedule book and APScheduler's job table; main's ScheduleBook may have made them already."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "speakerctl_schedules" not in existing:
        op.create_table(
            "speakerctl_schedules",
            sa.Column("id", sa.String(length=32), nullable=False),
            sa.Column("bulletin_id", sa.Integer(), nullable=False),
            sa.Column("targets", sa.Text(), nullable=False),
            sa.Column("rule", sa.Text(), nullable=False),
            sa.Column("priority", sa.Integer(), nullable=False),
            sa.Column("on_preempt", sa.String(length=16), nullable=False),
            sa.Column("window_s", sa.Integer(), nullable=False),
            sa.Column("paused", sa.Boolean(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("revision", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.String(length=32), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    if "speakerctl_schedule_runs" not in existing:
        op.create_table(
            "speakerctl_schedule_runs",
            sa.Column("schedule_id", sa.String(length=32), nullable=False),
            sa.Column("fire_at", sa.String(length=32), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("broadcast_id", sa.String(length=64), nullable=False),
            sa.Column("detail", sa.String(length=200), nullable=False),
            sa.Column("recorded_at", sa.String(length=32), nullable=False),
            sa.PrimaryKeyConstraint("schedule_id", "fire_at"),
        )
    if "speakerctl_apscheduler_jobs" not in existing:
        op.create_table(
            "speakerctl_apscheduler_jobs",
            sa.Column("id", sa.Unicode(length=191), nullable=False),
            sa.Column("next_run_time", sa.Float(precision=25), nullable=True),
            sa.Column("job_state", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(
            op.f("ix_speakerctl_apscheduler_jobs_next_run_time"),
            "speakerctl_apscheduler_jobs",
            ["next_run_time"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("speakerctl_apscheduler_jobs")
    op.drop_table("speakerctl_schedule_runs")
    op.drop_table("speakerctl_schedules")
