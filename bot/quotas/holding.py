"""Holding what a call may cost against every limit it is under, in one transaction: all it asks
for where every limit has room, else as many units as the tightest limit allows, else a refusal.

Every hold is one conditional UPDATE that cannot pass its limit. Only when the whole ask does not
fit is the counter's row claimed (taken for the rest of the transaction, its `used` returned), so
the smaller hold sized from that figure cannot be overtaken by another transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.errors import QuotaExceeded
from bot.quotas import statements as sql
from bot.quotas.statements import Target
from bot.quotas.values import Ask, Cap


@dataclass
class Holding:
    """The units held on the targets done so far, the target that cut them, and the refusals."""

    units: int
    held: list[Target] = field(default_factory=list)
    binding: Target | None = None
    refusals: list[QuotaExceeded] = field(default_factory=list)

    @property
    def cap(self) -> Cap | None:
        """The limit that held fewer units than asked for, if one did."""
        target = self.binding
        if target is None:
            return None
        return Cap(target.name, target.limit, target.unit, target.resets_at)


async def hold_all(session: AsyncSession, targets: list[Target], ask: Ask, now: datetime) -> Holding:
    """Hold `ask` on every target, in their (sorted) order. Refusals are collected, not raised:
    the caller names the one that lasts longest and rolls the transaction back."""
    holding = Holding(ask.units)
    for target in targets:
        units, used = await _hold_up_to(session, target, holding.units, now)
        if units < ask.least:
            holding.refusals.append(_refusal(target, used, ask))
            continue
        if units < holding.units:
            # Give back what the targets done so far hold beyond the smaller amount.
            shrink = [
                (t.subject, t.period_key, t.amount(units) - t.amount(holding.units)) for t in holding.held
            ]
            await sql.shift(session, shrink, now)
            holding.units, holding.binding = units, target
        holding.held.append(target)
    return holding


async def _hold_up_to(session: AsyncSession, target: Target, most: int, now: datetime) -> tuple[int, int]:
    """Hold `most` units on one target, or as many as its limit has room for: (units held, the
    counter's `used` when it had no room for `most`, else 0). Units below 0: nothing fits."""
    if await sql.hold(session, target, target.amount(most), now):
        return most, 0
    used = await sql.claim(session, target, now)
    if used is None:  # the period's first request: its row does not exist yet
        await sql.ensure(session, target, now)
        if await sql.hold(session, target, target.amount(most), now):
            return most, 0
        used = await sql.claim(session, target, now) or 0
    units = target.units_within(target.limit - used, most)
    if units < 0 or not await sql.hold(session, target, target.amount(units), now):
        return -1, used  # not reached while the row is claimed; refuse rather than pass the limit
    return units, used


def _refusal(target: Target, used: int, ask: Ask) -> QuotaExceeded:
    return QuotaExceeded(
        limit=target.name,
        limit_amount=target.limit,
        used_amount=used,
        unit=target.unit,
        resets_at=target.resets_at,
        needed_amount=target.amount(ask.least),
        kind=ask.kind,
        model=ask.model,
    )
