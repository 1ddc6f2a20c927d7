"""Users, sign-in sessions, the approval queue, per-zone approval policies, who approved, audit subjects."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("zone_id", sa.String(length=128), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("token_sha256"),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_index(op.f("ix_user_sessions_expires_at"), "user_sessions", ["expires_at"], unique=False)
    _approvals()
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=200), nullable=False, server_default=""))
        batch.create_index(batch.f("ix_audit_actor"), ["actor"], unique=False)
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(length=64), nullable=False, server_default=""))
    with op.batch_alter_table("speakerctl_schedules") as batch:
        batch.add_column(sa.Column("approved_by", sa.String(length=64), nullable=False, server_default=""))


def _approvals() -> None:
    op.create_table(
        "approval_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bulletin_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.String(length=128), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_above", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["bulletin_id"], ["bulletins.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("bulletin_id", "zone_id", "state"):
        op.create_index(op.f(f"ix_approval_items_{column}"), "approval_items", [column], unique=False)
    op.create_table(
        "approval_policies",
        sa.Column("zone_id", sa.String(length=128), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("zone_id"),
    )


def downgrade() -> None:
    with op.batch_alter_table("speakerctl_schedules") as batch:
        batch.drop_column("approved_by")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("approved_by")
    with op.batch_alter_table("audit") as batch:
        batch.drop_index(batch.f("ix_audit_actor"))
        batch.drop_column("subject")
    op.drop_table("approval_policies")
    op.drop_table("approval_items")
    op.drop_table("user_sessions")
    op.drop_table("users")
