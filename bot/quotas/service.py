"""Quotas: reserve an estimate before a Grok call, settle the real cost after, or release it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.db import Sessions
from bot.errors import BadInput
from bot.quotas import statements as sql
from bot.quotas.holding import hold_all
from bot.quotas.periods import month_start, next_day_start, next_month_start, period_keys
from bot.quotas.statements import Delta, Target
from bot.quotas.values import IMAGES, Ask, Charge, Limits, Reservation, Subject, UsageSummary
from bot.settings import Settings, usd_to_ticks

log = logging.getLogger(__name__)


class Quotas:
    """Spending and image limits per user, per workspace pool; every method is one transaction."""

    def __init__(self, sessions: Sessions, settings: Settings, *, clock: Callable[[], datetime]) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock  # aware UTC now; periods are cut in settings.zone

    async def reserve(
        self, subject: Subject, *, ticks: int, images: int = 0, is_admin: bool = False
    ) -> Reservation:
        """Hold exactly `ticks` (and `images`) against every applicable limit, or raise QuotaExceeded."""
        return await self.reserve_up_to(subject, Ask(unit_ticks=ticks, unit_images=images), is_admin=is_admin)

    async def reserve_up_to(self, subject: Subject, ask: Ask, *, is_admin: bool = False) -> Reservation:
        """Hold all of `ask` where every limit has room for it, else as many units as the tightest
        limit allows (the reservation's `cap` names it), or raise QuotaExceeded when fewer than
        `ask.least` fit. One transaction: one conditional UPDATE per limit, and two more for a
        limit that has less room than asked for."""
        now = self._clock()
        exempt = self._exempt(subject, is_admin)
        targets = self._targets(subject, now, await self.limits_for(subject), ask, exempt=exempt)
        async with self._sessions.begin() as session:
            holding = await hold_all(session, targets, ask, now)
            if holding.refusals:
                # Raising out of the block rolls every hold back. Name the limit that lasts
                # longest: tomorrow's reset is no help to someone whose month is spent.
                raise max(holding.refusals, key=lambda exc: exc.resets_at or now)
            reservation_id = await sql.open_reservation(session, targets, holding.units, now)
        units = holding.units
        return Reservation(
            id=reservation_id,
            subject=subject,
            ticks=ask.base_ticks + units * ask.unit_ticks,
            images=units * ask.unit_images,
            units=units,
            cap=holding.cap,
        )

    async def settle(self, reservation: Reservation, charge: Charge) -> None:
        """Replace the estimate by the real cost and write the ledger row; once per reservation."""
        now = self._clock()
        async with self._sessions.begin() as session:
            holds = await sql.close_reservation(session, reservation.id, start="held", end="settled", now=now)
            was_held = holds is not None
            if holds is None:
                # Released already (swept during a slow call, say): the money was still spent,
                # so charge it in full. An already settled reservation is left alone.
                holds = await sql.close_reservation(
                    session, reservation.id, start="released", end="settled", now=now
                )
                if holds is None:
                    return
                log.warning("settling quota reservation %d after its release", reservation.id)
            # False: this idempotency key was charged before, so only the hold is given back.
            recorded = await sql.record(session, reservation.subject, charge, now)
            deltas: list[Delta] = []
            for subject, period_key, reserved in holds:
                actual = charge.images if subject.startswith(IMAGES) else charge.cost_ticks
                deltas.append(
                    (subject, period_key, (actual if recorded else 0) - (reserved if was_held else 0))
                )
            await sql.shift(session, deltas, now)

    async def release(self, reservation: Reservation) -> None:
        """Give the held estimate back (the call failed or never happened); once."""
        now = self._clock()
        async with self._sessions.begin() as session:
            held = await sql.close_reservation(session, reservation.id, start="held", end="released", now=now)
            await sql.shift(session, [(s, p, -amount) for s, p, amount in held or []], now)

    async def charge(self, subject: Subject, charge: Charge) -> None:
        """Charge a cost that had no reservation (digests, deferred results): never refused.

        A subject with user_id "" is the workspace itself: only its pool and the ledger.
        """
        now = self._clock()
        limits = await self.limits_for(subject)
        exempt = self._exempt(subject, False)
        cost = Ask(unit_ticks=charge.cost_ticks, unit_images=charge.images)
        targets = self._targets(subject, now, limits, cost, exempt=exempt)
        async with self._sessions.begin() as session:
            if not await sql.record(session, subject, charge, now):
                return
            for target in targets:
                await sql.ensure(session, target, now)
                await sql.shift(session, [(target.subject, target.period_key, target.amount(1))], now)

    async def sweep_stale(self, older_than: timedelta) -> int:
        """Release reservations held longer than `older_than` (a crash left them); the count."""
        now = self._clock()
        async with self._sessions.begin() as session:
            stale = await sql.close_stale(session, before=now - older_than, now=now)
            await sql.shift(session, [(s, p, -amount) for held in stale for s, p, amount in held], now)
        if stale:
            log.warning("released %d stale quota reservations", len(stale))
        return len(stale)

    async def summary(self, subject: Subject, *, is_admin: bool = False) -> UsageSummary:
        """The `usage` command's numbers for this user: today and this month."""
        now = self._clock()
        zone = self._settings.zone
        day, month = period_keys(now, zone)
        limits = await self.limits_for(subject)
        keys = [
            (subject.spend_key, day),
            (subject.spend_key, month),
            (subject.images_key, day),
            (subject.workspace_key, month),
        ]
        async with self._sessions() as session:
            used = await sql.used(session, keys)
            requests, prompt, completion, reasoning, tool_calls, tool_ticks = await sql.ledger_totals(
                session, subject, since=month_start(now, zone)
            )
        return UsageSummary(
            limits=limits,
            exempt=self._exempt(subject, is_admin),
            day_ticks=used.get(keys[0], 0),
            month_ticks=used.get(keys[1], 0),
            images_today=used.get(keys[2], 0),
            requests=requests,
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            tool_calls=tool_calls,
            tool_cost_ticks=tool_ticks,
            workspace_month_ticks=used.get(keys[3], 0),
            workspace_monthly_limit=usd_to_ticks(self._settings.grokbot_workspace_monthly_usd),
            day_resets_at=next_day_start(now, zone),
            month_resets_at=next_month_start(now, zone),
        )

    async def limits_for(self, subject: Subject) -> Limits:
        """The user's override where set, field by field, else the settings' defaults."""
        settings = self._settings
        defaults = Limits(
            daily_ticks=usd_to_ticks(settings.grokbot_user_daily_usd),
            monthly_ticks=usd_to_ticks(settings.grokbot_user_monthly_usd),
            daily_images=settings.grokbot_user_daily_images,
        )
        async with self._sessions() as session:
            override = await sql.find_override(session, subject)
        if override is None:
            return defaults
        return Limits(
            daily_ticks=_pick(override.daily_ticks, defaults.daily_ticks),
            monthly_ticks=_pick(override.monthly_ticks, defaults.monthly_ticks),
            daily_images=_pick(override.daily_images, defaults.daily_images),
        )

    async def set_override(
        self,
        subject: Subject,
        *,
        daily_ticks: int | None = None,
        monthly_ticks: int | None = None,
        daily_images: int | None = None,
        set_by: str,
    ) -> Limits:
        """Set some of a user's limits (None leaves a field as it was); the new effective limits."""
        if not subject.user_id:
            raise BadInput("limits are set per user: name a user")
        given = {"daily_ticks": daily_ticks, "monthly_ticks": monthly_ticks, "daily_images": daily_images}
        changes = {name: value for name, value in given.items() if value is not None}
        if any(value < 0 for value in changes.values()):
            raise BadInput("a limit is 0 (unlimited) or more")
        async with self._sessions.begin() as session:
            await sql.upsert_override(session, subject, changes, set_by=set_by, now=self._clock())
        return await self.limits_for(subject)

    async def clear_override(self, subject: Subject) -> None:
        """Back to the settings' defaults."""
        async with self._sessions.begin() as session:
            await sql.delete_override(session, subject)

    def _exempt(self, subject: Subject, is_admin: bool) -> bool:
        return is_admin or self._settings.is_admin(subject.platform, subject.user_id)

    def _targets(
        self, subject: Subject, now: datetime, limits: Limits, ask: Ask, *, exempt: bool
    ) -> list[Target]:
        """The counters a cost goes to, sorted: every transaction locks rows in that one order."""
        zone = self._settings.zone
        day, month = period_keys(now, zone)
        day_end, month_end = next_day_start(now, zone), next_month_start(now, zone)
        # Exempt users are counted all the same, against limit 0 (unlimited), so usage shows.
        user = Limits(0, 0, 0) if exempt else limits
        spend = (ask.base_ticks, ask.unit_ticks)
        targets = []
        if subject.user_id:
            targets += [
                Target(subject.spend_key, day, *spend, user.daily_ticks, "daily spend", "ticks", day_end),
                Target(
                    subject.spend_key, month, *spend, user.monthly_ticks, "monthly spend", "ticks", month_end
                ),
            ]
            if ask.unit_images:
                images = (0, ask.unit_images, user.daily_images)
                targets.append(Target(subject.images_key, day, *images, "daily images", "images", day_end))
        # The workspace pool caps the operator's bill, so it binds admins too.
        pool = usd_to_ticks(self._settings.grokbot_workspace_monthly_usd)
        if pool:
            workspace = subject.workspace_key
            targets.append(
                Target(workspace, month, *spend, pool, "workspace monthly spend", "ticks", month_end)
            )
        return sorted(targets, key=lambda target: (target.subject, target.period_key))


def _pick(override: int | None, default: int) -> int:
    return default if override is None else override
