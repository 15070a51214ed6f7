"""drop deferred_request.reply_to: stored and never read (a deferred answer goes to its
conversation's place, and a slash-command question has no message to reply to)

Revision ID: 0002_drop_deferred_reply_to
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0002_drop_deferred_reply_to"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deferred_request", schema=None) as batch_op:
        batch_op.drop_column("reply_to")


def downgrade() -> None:
    # Rows in flight get "" (no message to reply to); the default only fills them, as in 0001.
    with op.batch_alter_table("deferred_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "reply_to", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=""
            )
        )
    with op.batch_alter_table("deferred_request", schema=None) as batch_op:
        batch_op.alter_column("reply_to", server_default=None)
