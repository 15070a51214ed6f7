"""The admin pages: overview, users and one user (with the limits form), workspaces, digests and
deferred answers, each table also as CSV. Every page gets the signed-in admin from bot.admin.site.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from aiohttp import web

from bot.admin import ledger, records
from bot.admin.charts import Chart, by_kind, cumulative, day_labels
from bot.admin.ledger import LEDGER, Scope
from bot.admin.limits import read_limits
from bot.admin.signin import Admin
from bot.admin.site import PREFIX, Site, csv_response, csv_text, scope_of
from bot.errors import BadInput
from bot.quotas import Subject, format_usd, month_start
from bot.reports import UsageRow, render
from bot.settings import usd_to_ticks

OVERVIEW_DAYS = 90
TOP_WORKSPACES = 5
TOP_USERS = 100
PERIODS = {"today": 0, "week": 6, "month": -1, "quarter": 89}  # days back; -1: since the 1st


async def overview(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    now, zone, scope = site.clock(), site.settings.zone, scope_of(admin)
    days = ledger.local_days(now, zone, OVERVIEW_DAYS)
    memo = (site.past, now)
    since_month = month_start(now, zone)
    month_days = tuple(day for day in days if day.start >= since_month)
    # Three charts' reads at once, each on a connection of its own (SQLite runs them on two cores).
    kinds, models, pool = await asyncio.gather(
        ledger.by_kind(site.sessions, days, scope, memo=memo),
        ledger.by_column(site.sessions, LEDGER.c.model, days, scope, memo=memo),
        _pool_chart(site, scope, month_days),
    )
    charts = [
        Chart(
            "kinds", f"Spend per day by kind, last {OVERVIEW_DAYS} days", day_labels(kinds), by_kind(kinds)
        ),
        Chart(
            "models", f"Spend per day by model, last {OVERVIEW_DAYS} days", day_labels(models), models.series
        ),
        pool,
    ]
    return site.render(
        request,
        "overview.html",
        title="Overview",
        today=format_usd(kinds.total(since=days[-1].start)),
        month=format_usd(kinds.total(since=since_month)),
        charts=charts,
        xai=await _xai_state(site, now),
        zone=site.settings.grokbot_timezone,
    )


async def _pool_chart(site: Site, scope: Scope | None, month_days: tuple[ledger.Day, ...]) -> Chart:
    spaces = await ledger.workspaces(site.sessions, scope)
    series = await ledger.by_workspace(site.sessions, spaces, month_days, memo=(site.past, site.clock()))
    top = sorted(series.series.items(), key=lambda item: -sum(item[1]))[:TOP_WORKSPACES]
    pool = usd_to_ticks(site.settings.grokbot_workspace_monthly_usd)
    return Chart(
        "pool",
        "This month so far, by workspace, against the workspace pool",
        tuple(day.date.isoformat() for day in month_days),
        {name: cumulative(values) for name, values in top},
        kind="line",
        limit=("workspace pool", pool) if pool else None,
    )


async def _xai_state(site: Site, now: datetime) -> dict[str, str]:
    day = await records.signals(site.sessions, since=now - timedelta(hours=24))
    week = await records.signals(site.sessions, since=now - timedelta(days=7))
    state = {}
    for kind, label in (
        ("credits", "Credit or spending-limit refusals"),
        ("rate_limited", "Rate-limit pauses"),
    ):
        last = week.last.get(kind)
        seen = f", last at {last.astimezone(site.settings.zone):%Y-%m-%d %H:%M}" if last else ""
        state[label] = f"{day.counts.get(kind, 0)} in 24 h, {week.counts.get(kind, 0)} in 7 days{seen}"
    loaded = site.prices.loaded_at if site.prices is not None else None
    if loaded is None:
        state["Price list"] = "built-in table (xAI's live prices have not been loaded)"
    else:
        minutes = int((now - loaded).total_seconds() // 60)
        state["Price list"] = f"live from xAI, loaded {minutes} min ago"
    return state


def _since(site: Site, period: str) -> datetime:
    now, zone = site.clock(), site.settings.zone
    back = PERIODS.get(period, -1)
    if back < 0:
        return month_start(now, zone)
    return ledger.local_days(now, zone, back + 1)[0].start


async def users(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    period = request.query.get("period", "month")
    rows = await ledger.top_spenders(site.sessions, since=_since(site, period), scope=scope_of(admin))
    if request.path.endswith(".csv"):
        return csv_text(f"grokbot-users-{period}.csv", render(rows, "csv"))
    shown = rows[:TOP_USERS]
    names: dict[tuple[str, str], str] = {}
    for platform in {row.platform for row in shown}:
        ids = [row.user_id for row in shown if row.platform == platform]
        found = await ledger.user_names(site.sessions, platform, ids)
        names.update({(platform, user): name for user, name in found.items()})
    return site.render(
        request,
        "users.html",
        title="Users",
        rows=shown,
        total=len(rows),
        names=names,
        period=period,
        periods=list(PERIODS),
        usd=format_usd,
    )


def _user_of(request: web.Request, admin: Admin) -> Subject:
    info = request.match_info
    try:
        subject = Subject(info["platform"], info["workspace"], info["user_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    scope = scope_of(admin)
    if scope is not None and (subject.platform, subject.workspace) != (scope.platform, scope.workspace):
        raise web.HTTPNotFound()  # another workspace's user is not this admin's to see
    return subject


async def user(site: Site, request: web.Request, admin: Admin, *, error: str = "") -> web.StreamResponse:
    subject = _user_of(request, admin)
    place = Scope(subject.platform, subject.workspace)
    recent = await ledger.recent_requests(site.sessions, place, subject.user_id)
    if request.path.endswith(".csv"):
        return csv_response(
            f"grokbot-requests-{subject.user_id}.csv",
            (
                "time",
                "kind",
                "model",
                "fingerprint",
                "prompt_tokens",
                "completion_tokens",
                "reasoning_tokens",
                "images",
                "cost_ticks",
            ),
            [
                (
                    r.at.isoformat(),
                    r.kind,
                    r.model,
                    r.fingerprint,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.reasoning_tokens,
                    r.images,
                    r.cost_ticks,
                )
                for r in recent
            ],
        )
    limits = await site.quotas.limits_for(subject)
    days = ledger.local_days(site.clock(), site.settings.zone, OVERVIEW_DAYS)
    spent = await ledger.user_days(site.sessions, place, subject.user_id, days)
    chart = Chart(
        "user",
        f"Spend per day, last {OVERVIEW_DAYS} days",
        tuple(d.date.isoformat() for d in days),
        {"spend": spent},
        limit=("daily limit", limits.daily_ticks) if limits.daily_ticks else None,
    )
    names = await ledger.user_names(site.sessions, subject.platform, [subject.user_id])
    return site.render(
        request,
        "user.html",
        status=400 if error else 200,
        title=f"User {subject.user_id}",
        subject=subject,
        name=names.get(subject.user_id, ""),
        limits=limits,
        chart=chart,
        override=await records.override_of(site.sessions, place, subject.user_id),
        summary=await site.quotas.summary(subject),
        recent=recent,
        error=error,
        saved="saved" in request.query,
        usd=format_usd,
        zone=site.settings.zone,
    )


async def user_limits(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    """Set or clear a user's limits, by the `quota` command's rules."""
    subject = _user_of(request, admin)
    form = {key: str(value) for key, value in (await request.post()).items()}
    try:
        if "reset" in form:
            await site.quotas.clear_override(subject)
        else:
            change = read_limits(form)
            if change.empty:
                raise BadInput("Fill in at least one limit to change, or reset to the defaults.")
            await site.quotas.set_override(
                subject,
                daily_ticks=change.daily_ticks,
                monthly_ticks=change.monthly_ticks,
                daily_images=change.daily_images,
                set_by=admin.label,
            )
    except BadInput as exc:
        return await user(site, request, admin, error=str(exc))
    where = f"{PREFIX}/users/{subject.platform}/{subject.workspace}/{subject.user_id}?saved=1"
    return web.Response(status=303, headers={"Location": where})


async def workspaces(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    rows = await ledger.top_spenders(site.sessions, since=_since(site, "month"), scope=scope_of(admin))
    totals = _per_workspace(rows)
    if request.path.endswith(".csv"):
        return csv_text("grokbot-workspaces-month.csv", render(totals, "csv"))
    pool = usd_to_ticks(site.settings.grokbot_workspace_monthly_usd)
    return site.render(request, "workspaces.html", title="Workspaces", rows=totals, pool=pool, usd=format_usd)


def _per_workspace(rows: list[UsageRow]) -> list[UsageRow]:
    """`grokbot usage`'s rows summed per workspace (user "" stands for all of its users)."""
    sums: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        into = sums.setdefault((row.platform, row.workspace), [0] * 9)
        for i, value in enumerate(_counts(row)):
            into[i] += value
    merged = [UsageRow(platform, workspace, "", *counts) for (platform, workspace), counts in sums.items()]
    return sorted(merged, key=lambda row: (-row.cost_ticks, row.platform, row.workspace))


def _counts(row: UsageRow) -> tuple[int, ...]:
    return (
        row.requests,
        row.prompt_tokens,
        row.completion_tokens,
        row.reasoning_tokens,
        row.cached_tokens,
        row.images,
        row.cost_ticks,
        row.tool_calls,
        row.tool_cost_ticks,
    )


async def digests(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    rows = await records.digests(site.sessions, scope_of(admin))
    if request.path.endswith(".csv"):
        return csv_response(
            "grokbot-digests.csv",
            (
                "id",
                "platform",
                "workspace",
                "channel",
                "post_channel",
                "schedule",
                "timezone",
                "enabled",
                "next_run_at",
                "last_status",
                "last_run_at",
            ),
            [
                (
                    r.id,
                    r.platform,
                    r.workspace,
                    r.channel,
                    r.post_channel,
                    r.schedule,
                    r.timezone,
                    r.enabled,
                    r.next_run_at.isoformat(),
                    r.last_status,
                    r.last_run_at.isoformat() if r.last_run_at else "",
                )
                for r in rows
            ],
        )
    return site.render(request, "digests.html", title="Digests", rows=rows, zone=site.settings.zone)


async def digest_action(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    digest_id, action = int(request.match_info["digest_id"]), request.match_info["action"]
    scope = scope_of(admin)
    if action == "remove":
        found = await records.remove_digest(site.sessions, digest_id, scope=scope)
    else:
        found = await records.set_digest_enabled(
            site.sessions, digest_id, enabled=action == "resume", scope=scope
        )
    if not found:
        raise web.HTTPNotFound()
    return web.Response(status=303, headers={"Location": f"{PREFIX}/digests"})


async def deferred(site: Site, request: web.Request, admin: Admin) -> web.StreamResponse:
    states = await records.deferred(site.sessions, scope_of(admin))
    now = site.clock()
    if request.path.endswith(".csv"):
        return csv_response(
            "grokbot-deferred.csv",
            (
                "id",
                "status",
                "platform",
                "workspace",
                "channel",
                "user_id",
                "model",
                "attempts",
                "created_at",
                "delivered_at",
                "age_s",
            ),
            [
                (
                    r.id,
                    r.status,
                    r.platform,
                    r.workspace,
                    r.channel,
                    r.user_id,
                    r.model,
                    r.attempts,
                    r.created_at.isoformat(),
                    r.delivered_at.isoformat() if r.delivered_at else "",
                    int((now - r.created_at).total_seconds()),
                )
                for rows in states.values()
                for r in rows
            ],
        )
    return site.render(request, "deferred.html", title="Deferred answers", states=states, now=now, age=_age)


def _age(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
