"""Claiming rows across instances: the locked pick of due rows for a conditional UPDATE, and the
signal that a step's lease was lost. Shared by the deferred requests and the digest runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar


class LeaseLost(Exception):
    """A step's conditional UPDATE matched no row: another instance owns the row now, or it moved on."""


def claimable(
    session: AsyncSession, pick: SelectOfScalar[int | None]
) -> ColumnElement[Any] | SelectOfScalar[Any]:
    """The ids of `pick` for `UPDATE … WHERE id IN (…)`, locked where the database can lock them.

    PostgreSQL: a MATERIALIZED CTE with FOR UPDATE SKIP LOCKED, so concurrent claimers get
    disjoint rows. As a plain IN-subquery the planner may rescan it, and each rescan skips other
    rows, so one UPDATE could claim far more than LIMIT rows. SQLite has no row locks (SQLAlchemy
    drops the clause) and needs none: the whole UPDATE runs under its single writer lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return pick.scalar_subquery()
    picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
    return select(picked.c[0])
