"""How errors and limits read to users: what happened and what they can do, never secrets or
internals. The one catch site (bot/telling.py) and the jobs that tell users of failures (digests,
deferred answers) word errors here and nowhere else; answers and images cut by a limit word it here.
An error's own message is for the log; only `BadInput`, `PermissionDenied` and a platform refusal's
`user_text` are written for the person.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from math import ceil

from bot.errors import (
    BadInput,
    BotError,
    DeferredGone,
    GrokAuthFailed,
    GrokError,
    GrokInvalidOutput,
    GrokModerated,
    GrokOutOfCredits,
    GrokRateLimited,
    GrokRejected,
    GrokStreamBroken,
    GrokUnavailable,
    PermissionDenied,
    PlatformError,
    PlatformRateLimited,
    QuotaExceeded,
)
from bot.quotas import Cap, format_usd

__all__ = [
    "INTERRUPTED",
    "apology",
    "budget_cut",
    "budget_shortened",
    "deferred_accepted",
    "describe",
    "fewer_images",
]

# The end of an answer a restart (a deploy, a crash) cut short: the platform shows it as a failure
# note (⚠️) after what was shown. Only what was shown was charged.
INTERRUPTED = (
    "Grok was restarted while writing this answer, so it ends here. "
    "Ask again (send your question once more) for the whole answer."
)

WORKSPACE = "workspace "  # how the names of a workspace's limits start ("workspace monthly spend")


def describe(exc: BotError, *, zone: tzinfo, now: datetime) -> str:
    """Say what happened and what to do about it. Never includes secrets or internals."""
    if isinstance(exc, QuotaExceeded):
        return _describe_quota(exc, zone=zone, now=now)
    if isinstance(exc, BadInput | PermissionDenied):
        return str(exc)  # written for the person where it was raised
    if isinstance(exc, GrokError):
        return _describe_grok(exc)
    return _describe_other(exc)


def _describe_grok(exc: GrokError) -> str:
    if isinstance(exc, GrokOutOfCredits):
        return (
            "Grok cannot answer: the xAI account behind this bot is out of credits or reached its "
            "spending limit. The admins have been told. I will not ask xAI again for "
            f"{ceil(exc.retry_in)} s; nothing was charged to you."
        )
    if isinstance(exc, GrokAuthFailed):
        return (
            "Grok refused this bot's API key, or the xAI account is out of credits or at its "
            "spending limit. An admin needs to check the xAI console; nothing was charged to you."
        )
    if isinstance(exc, GrokRateLimited):
        return "Grok is busy right now (rate limited). Please try again in a minute; nothing was charged."
    if isinstance(exc, GrokModerated):
        return "Grok's content moderation blocked this request; nothing was charged. Try rephrasing it."
    if isinstance(exc, DeferredGone):
        return "The deferred answer expired or was lost before it could be collected; nothing was charged."
    if isinstance(exc, GrokStreamBroken):
        return "⚠️ The answer was cut off: the connection to Grok dropped. Nothing was charged; ask again."
    if isinstance(exc, GrokInvalidOutput):
        return "Grok's reply did not have the expected shape, so I could not use it. Nothing was charged."
    if isinstance(exc, GrokUnavailable):
        return "Grok is not reachable right now. Please try again shortly; nothing was charged."
    if isinstance(exc, GrokRejected):
        # xAI's own text can name the team or internals: it goes to the log, not the chat.
        return (
            f"Grok rejected this request (HTTP {exc.status or 400}); nothing was charged. If you "
            "chose a model with `model:`, check its name; otherwise an admin can find the details "
            "in the bot's log."
        )
    return "Grok could not answer this request; nothing was charged. Please try again."


def _describe_other(exc: BotError) -> str:
    if isinstance(exc, PlatformRateLimited):
        return "This chat is sending too many messages right now; please try again in a moment."
    if isinstance(exc, PlatformError):
        # The message names internals (the adapter, an API method, an error code): it is logged.
        return exc.user_text or (
            "The chat platform did not take my message, so this could not be finished. Please "
            "try again; if it keeps happening, tell an admin."
        )
    return "That did not work. Please try again; if it keeps happening, tell an admin."


def apology(error_id: str) -> str:
    """For a failure nobody foresaw: an id the person can quote to an admin, who finds it in the log."""
    return (
        f"Sorry, something went wrong on my side. If it keeps happening, tell an admin "
        f"the error id `{error_id}`."
    )


def _describe_quota(exc: QuotaExceeded, *, zone: tzinfo, now: datetime) -> str:
    if exc.unit == "images":
        used = f"You have used {exc.used_amount} of your {exc.limit_amount} images for today"
    elif exc.needed_amount:
        used = f"{_left(exc)}; {_smallest(exc)} needs about {format_usd(exc.needed_amount)}"
    else:
        used = (
            f"This request would pass the {exc.limit} limit of {format_usd(exc.limit_amount)} "
            f"({format_usd(exc.remaining)} left)"
        )
    if exc.resets_at is None:
        return f"{used}. Ask an admin to raise it."
    at, after = _resets(exc.resets_at, zone=zone, now=now)
    return f"{used}. It resets at {at} (in {after}), or an admin can raise it."


def budget_cut(cap: Cap, *, zone: tzinfo, now: datetime) -> str:
    """The end of an answer cut short by the budget: which limit, and when it resets."""
    at, after = _resets(cap.resets_at, zone=zone, now=now)
    amount = format_usd(cap.limit_amount)
    return (
        f"— I stopped here: this answer reached {_named(cap.limit)} ({amount}, resets at {at}, in {after})."
    )


def budget_shortened(cap: Cap, *, zone: tzinfo, now: datetime) -> str:
    """Said when a deferred answer is accepted with its length cut to what the budget buys (it is
    posted later, when the stream that would say "I stopped here" is long gone)."""
    at, after = _resets(cap.resets_at, zone=zone, now=now)
    amount = format_usd(cap.limit_amount)
    return (
        f"It may be shorter than usual: {_named(cap.limit)} ({amount}) covers only part of a full answer "
        f"until it resets at {at} (in {after})."
    )


def deferred_accepted(cap: Cap | None, *, zone: tzinfo, now: datetime) -> str:
    """What a person is told when their deferred question is accepted; with what the budget cut."""
    told = (
        "⏳ Your question went to Grok as a deferred request. I'll post the answer here when "
        "it is ready (usually within a few minutes)."
    )
    return told if cap is None else f"{told} {budget_shortened(cap, zone=zone, now=now)}"


def fewer_images(made: int, asked: int, cap: Cap, *, zone: tzinfo, now: datetime) -> str:
    """Why a batch of images holds fewer than were asked for: the limit that allowed no more."""
    at, after = _resets(cap.resets_at, zone=zone, now=now)
    if cap.unit == "images":
        limit = f"your daily image quota ({cap.limit_amount}) allows {made} more today"
    else:
        limit = f"{_named(cap.limit)} ({format_usd(cap.limit_amount)}) covers {made} more"
    return f"{made} of the {asked} images: {limit}. It resets at {at} (in {after})."


def _left(exc: QuotaExceeded) -> str:
    """ "You have $0.0004 left of your daily spend limit ($1.00)", or the workspace's."""
    left, amount = format_usd(exc.remaining), format_usd(exc.limit_amount)
    if exc.limit.startswith(WORKSPACE):
        return f"This workspace has {left} left of its {exc.limit.removeprefix(WORKSPACE)} limit ({amount})"
    return f"You have {left} left of your {exc.limit} limit ({amount})"


def _named(limit: str) -> str:
    """ "your daily spend limit", or "this workspace's monthly spend limit"."""
    if limit.startswith(WORKSPACE):
        return f"this workspace's {limit.removeprefix(WORKSPACE)} limit"
    return f"your {limit} limit"


def _smallest(exc: QuotaExceeded) -> str:
    model = f" from {exc.model}" if exc.model else ""
    if exc.kind == "image":
        return f"one image{model}"
    return f"the smallest answer{model}" if exc.kind == "chat" else "this request"


def _resets(resets_at: datetime, *, zone: tzinfo, now: datetime) -> tuple[str, str]:
    """When a limit resets, in `zone`, and how long until then: ("00:00 UTC", "3 h 20 min") within
    a day, else with the date ("2026-12-01 00:00 UTC", "4 d 3 h")."""
    local = resets_at.astimezone(zone)
    minutes = max(0, int((resets_at - now).total_seconds()) // 60)
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{local:%H:%M} {local.tzname()}", f"{hours} h {rest} min"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}", f"{hours // 24} d {hours % 24} h"
