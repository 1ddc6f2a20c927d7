"""Alembic environment: runs on the connection `store.migrate` hands over, against the store's tables."""

from alembic import context
from sqlmodel import SQLModel

import speakerctl.store.accounts
import speakerctl.store.approvals
import speakerctl.store.live
import speakerctl.store.monitoring
import speakerctl.store.outbox
import speakerctl.store.schedules
import speakerctl.store.tables
import speakerctl.store.tokens  # noqa: F401  (the imports register the tables)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
