"""open answers: each answer being written, with the platform references that close it after a crash

Revision ID: 0005_open_answers
Revises: 0004_search_tools
Create Date: 2026-12-07

open_answer holds one row per answer in progress (inserted when its first message exists, deleted
when it ends): the instance writing it, its place, the message being written and its native stream.
A row whose instance is no longer alive is an answer a crash left in progress; the next instance
closes it with a note (issue 18).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0005_open_answers"
down_revision: str | None = "0004_search_tools"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "open_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance", _AutoString(length=64), nullable=False),
        sa.Column("platform", _AutoString(length=16), nullable=False),
        sa.Column("workspace", _AutoString(length=64), nullable=False),
        sa.Column("channel", _AutoString(length=64), nullable=False),
        sa.Column("thread", _AutoString(length=64), nullable=False),
        sa.Column("message_id", _AutoString(length=64), nullable=False),
        sa.Column("stream", _AutoString(length=64), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_answer")),
    )
    with op.batch_alter_table("open_answer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_open_answer_instance"), ["instance"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("open_answer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open_answer_instance"))
    op.drop_table("open_answer")
