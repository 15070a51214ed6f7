"""search tools: per-place tools and filters, an answer's sources, tool calls and their cost in
the ledger

Revision ID: 0004_search_tools
Revises: 0003_admin_pages
Create Date: 2026-12-09

place_setting gains `tools`, `search_domains` and `x_handles` (None: not set at this place); turn
gains `sources` (JSON, None when the answer had none); usage_event gains `tool_calls` and
`tool_cost_ticks` (0 for every row before). The overview's kind index is rebuilt to cover the
tool spend too, so its "search tools" series is summed from the index alone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = "0004_search_tools"
down_revision: str | None = "0003_admin_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AutoString = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("place_setting", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tools", _AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("search_domains", _AutoString(length=400), nullable=True))
        batch_op.add_column(sa.Column("x_handles", _AutoString(length=400), nullable=True))
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.Text(), nullable=True))
    # Rows already in the ledger made no tool calls: the default fills them, then goes (as in 0001).
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tool_calls", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("tool_cost_ticks", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.drop_index("ix_usage_event_kind_time")
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.alter_column("tool_calls", server_default=None)
        batch_op.alter_column("tool_cost_ticks", server_default=None)
        batch_op.create_index(
            "ix_usage_event_kind_time", ["kind", "created_at", "cost_ticks", "tool_cost_ticks"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_event_kind_time")
        batch_op.drop_column("tool_cost_ticks")
        batch_op.drop_column("tool_calls")
    with op.batch_alter_table("usage_event", schema=None) as batch_op:
        batch_op.create_index("ix_usage_event_kind_time", ["kind", "created_at", "cost_ticks"], unique=False)
    with op.batch_alter_table("turn", schema=None) as batch_op:
        batch_op.drop_column("sources")
    with op.batch_alter_table("place_setting", schema=None) as batch_op:
        batch_op.drop_column("x_handles")
        batch_op.drop_column("search_domains")
        batch_op.drop_column("tools")
