"""The chat commands other than a question: help, imagine, usage, quota, digest, settings, admin,
reset, and the options of `ask`. Names and options come from bot/command_registry.py.

Each handler gets a `CommandContext` (what it may use, never the engine), validates its options (a
BadInput says what is accepted) and answers through the Platform; errors propagate to the one
catch site, which alone tells them to the person.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from bot.admin import Admin, SignIns, admin_link, usage_picture
from bot.callers import Caller
from bot.command_registry import REGISTRY, TEXT_OPTION, CommandSpec, spec_of
from bot.conversation import DEFAULT_SYSTEM_PROMPT
from bot.db import Sessions
from bot.errors import BadInput, PermissionDenied
from bot.grok import PriceBook
from bot.help_text import command_help, help_text
from bot.images import ImageMaker
from bot.place_settings import Defaults, describe_settings, settings_change
from bot.platform import Incoming, Place, Platform, PostsImagesPrivately
from bot.quotas import Quotas, Subject, UsageSummary, format_usd
from bot.search import SEARCH_CHOICES
from bot.settings import Settings, usd_to_ticks
from bot.store import Conversations
from bot.telling import Audience

__all__ = [
    "HANDLERS",
    "WORD_COMMANDS",
    "AskOptions",
    "CommandContext",
    "DigestBook",
    "Handler",
    "ask_options",
    "parse_bool",
]

TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}
REASONING = ("low", "high")
# A message of just one of these words runs it (where slash commands, which carry no thread, cannot).
WORD_COMMANDS = frozenset(spec.name for spec in REGISTRY if spec.textless)


class DigestBook(Protocol):
    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
        ...


@dataclass(frozen=True)
class CommandContext:
    """What a command may use for one person's command, and no more."""

    settings: Settings
    sessions: Sessions  # for the admin pages' sign-ins and the usage picture
    clock: Callable[[], datetime]
    quotas: Quotas
    conversations: Conversations
    images: ImageMaker
    digests: DigestBook | None
    caller: Caller  # who pays, is an admin, is exempt from limits
    audience: Audience  # the platform the command came from, and where failures are told
    conversation_place: Callable[[Incoming], Awaitable[Place | None]]
    prices: PriceBook  # the models `settings` accepts

    @property
    def platform(self) -> Platform:
        return self.audience.platform

    async def answer_privately(self, incoming: Incoming, text: str) -> None:
        await self.platform.post_text(incoming.place, text, private_to=incoming.author.id)


Handler = Callable[[CommandContext, Incoming], Awaitable[None]]


# -- options ----------------------------------------------------------------------------------


def parse_bool(value: str, *, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise BadInput(f"`{name}` accepts true or false, not `{value}`.")


def _spec(name: str) -> CommandSpec:
    spec = spec_of(name)
    assert spec is not None, f"{name} is not in the command registry"
    return spec


def _options(incoming: Incoming) -> dict[str, str]:
    """The command's options, refused when one is not the registered command's."""
    assert incoming.command is not None
    spec = _spec(incoming.command.name)
    options = dict(incoming.command.options)
    unknown = sorted(set(options) - spec.accepted)
    if unknown:
        raise BadInput(f"Unknown option `{unknown[0]}`. Usage: `{spec.usage}`")
    return options


def _text(incoming: Incoming, options: Mapping[str, str]) -> str:
    """The command's free text, with Discord's `prompt` option in front."""
    text = incoming.command.text if incoming.command else incoming.text
    return (options.get(TEXT_OPTION, "") + " " + text).strip()


@dataclass(frozen=True)
class AskOptions:
    prompt: str
    model: str  # "" for the bot's default
    reasoning: str | None  # "low" | "high"
    defer: bool
    search: str = "auto"  # one of SEARCH_CHOICES


def ask_options(incoming: Incoming) -> AskOptions:
    """A question's text and options, from a message or the `ask` command."""
    if incoming.command is None:
        return AskOptions(incoming.text.strip(), "", None, defer=False)
    options = dict(incoming.command.options)
    spec = _spec("ask")
    unknown = sorted(set(options) - spec.accepted)
    if unknown:
        accepts = ", ".join(o.written for o in spec.options)
        raise BadInput(f"`ask` has no option `{unknown[0]}`. It accepts {accepts} before the question.")
    reasoning = options.get("reasoning", "").lower() or None
    if reasoning is not None and reasoning not in REASONING:
        raise BadInput("reasoning accepts `low` or `high`.")
    defer = parse_bool(options.get("defer", "false"), name="defer")
    search = options.get("search", "auto").lower()
    if search not in SEARCH_CHOICES:
        raise BadInput("`search` accepts `auto` (as this place allows), `off`, `web` or `x`.")
    return AskOptions(_text(incoming, options), options.get("model", ""), reasoning, defer, search)


# -- handlers ---------------------------------------------------------------------------------


async def help_command(ctx: CommandContext, incoming: Incoming) -> None:
    """Every command, or with a command's name (`help imagine`) that command's options."""
    spec = spec_of(incoming.command.text.strip().lower()) if incoming.command else None
    await ctx.answer_privately(incoming, command_help(spec) if spec else help_text())


async def reset_command(ctx: CommandContext, incoming: Incoming) -> None:
    place = await ctx.conversation_place(incoming)
    forgotten = 0 if place is None else await ctx.conversations.forget(place)
    text = (
        f"🧹 Forgot this conversation ({forgotten} messages). The next question starts fresh."
        if forgotten
        else "There was nothing to forget here: the next question starts fresh."
    )
    await ctx.answer_privately(incoming, text)


async def imagine_command(ctx: CommandContext, incoming: Incoming) -> None:
    options = _options(incoming)
    prompt = _text(incoming, options)
    if not prompt:
        raise BadInput(f"Describe the image to generate: `{_spec('imagine').usage}`.")
    raw = options.get("count", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 4:
        raise BadInput(f"`count` accepts a whole number from 1 to 4, not `{raw}`.")
    await ctx.images.imagine(incoming, ctx.audience, caller=ctx.caller, prompt=prompt, count=int(raw))


async def usage_command(ctx: CommandContext, incoming: Incoming) -> None:
    period = _options(incoming).get("period", "").lower()
    if period not in ("", "day", "today", "month"):
        raise BadInput("`period` accepts `day` or `month`.")
    summary = await ctx.quotas.summary(ctx.caller.payer, is_admin=ctx.caller.is_exempt)
    lines = [f"**Your Grok usage** ({ctx.settings.grokbot_timezone})"]
    if period in ("", "day", "today"):
        lines.append(
            f"Today: {format_usd(summary.day_ticks)} spent"
            + _left(summary.day_ticks, summary.limits.daily_ticks, summary.exempt)
            + f" · {summary.images_today} images"
            + _left_images(summary.images_today, summary.limits.daily_images, summary.exempt)
        )
    if period in ("", "month"):
        lines.append(
            f"This month: {format_usd(summary.month_ticks)} spent"
            + _left(summary.month_ticks, summary.limits.monthly_ticks, summary.exempt)
        )
    lines += _month_counts(summary)
    if summary.exempt:
        lines.append("You are an admin: limits do not apply to you.")
    await _post_usage(
        ctx, incoming, "\n".join(lines), daily_limit=0 if summary.exempt else summary.limits.daily_ticks
    )


async def _post_usage(ctx: CommandContext, incoming: Incoming, text: str, *, daily_limit: int) -> None:
    """The figures with the caller's picture, to them alone: where they asked if files can be private
    there, else where the platform gives files privately (Slack: a DM), else the figures only."""
    platform = ctx.platform
    if not (platform.capabilities.private_files or isinstance(platform, PostsImagesPrivately)):
        await ctx.answer_privately(incoming, text)  # a picture would be seen by all
        return
    picture = await usage_picture(
        ctx.sessions, ctx.settings, ctx.caller.payer, daily_limit_ticks=daily_limit, clock=ctx.clock
    )
    if isinstance(platform, PostsImagesPrivately) and not platform.capabilities.private_files:
        await platform.post_images_privately(incoming.place, [picture], text=text, user_id=incoming.author.id)
    else:
        await platform.post_images(incoming.place, [picture], text=text)


def _month_counts(summary: UsageSummary) -> list[str]:
    """This month's tokens, and the searches and code runs with their part of the spend."""
    return [
        f"Tokens this month: {summary.prompt_tokens:,} in · {summary.completion_tokens:,} out"
        f" · {summary.reasoning_tokens:,} reasoning",
        f"Searches and code runs this month: {summary.tool_calls:,}"
        f" ({format_usd(summary.tool_cost_ticks)} of the spend)",
    ]


def _left(used: int, limit: int, exempt: bool) -> str:
    if exempt or limit == 0:
        return " (no limit)"
    return f" of {format_usd(limit)} ({format_usd(max(0, limit - used))} left)"


def _left_images(used: int, limit: int, exempt: bool) -> str:
    if exempt or limit == 0:
        return " (no limit)"
    return f" of {limit} ({max(0, limit - used)} left)"


USER_REF = re.compile(r"^<?@?!?([A-Za-z0-9_.:-]+?)(?:\|[^>]*)?>?$")


def parse_user(value: str) -> str:
    """A user id from `123`, `<@123>`, `<@!123>` or Slack's `<@U123|name>`."""
    match = USER_REF.match(value.strip())
    if not match:
        raise BadInput("`user` accepts a mention or a user id.")
    return match.group(1)


def parse_usd(value: str, *, name: str) -> int:
    try:
        amount = Decimal(value.strip().lstrip("$"))
    except InvalidOperation:
        raise BadInput(f"`{name}` accepts an amount of US dollars such as 2.50 (0 = no limit).") from None
    if amount < 0 or amount > 100_000:
        raise BadInput(f"`{name}` accepts an amount from 0 (no limit) to 100000 US dollars.")
    return usd_to_ticks(amount)


def _new_limits(options: Mapping[str, str]) -> tuple[int | None, int | None, int | None]:
    """The daily and monthly spend (ticks) and daily images an admin set; None where not given."""
    daily = parse_usd(options["daily_usd"], name="daily_usd") if "daily_usd" in options else None
    monthly = parse_usd(options["monthly_usd"], name="monthly_usd") if "monthly_usd" in options else None
    images = None
    if "images" in options:
        if not options["images"].isdigit():
            raise BadInput("`images` accepts a whole number of images per day (0 = no limit).")
        images = int(options["images"])
    return daily, monthly, images


async def quota_command(ctx: CommandContext, incoming: Incoming) -> None:
    options = _options(incoming)
    if not ctx.caller.is_admin:
        raise PermissionDenied("Only admins can view or change quotas. Use `usage` to see your own.")
    if "user" not in options:
        raise BadInput(f"Name the user: `{_spec('quota').usage}`")
    user_id = parse_user(options["user"])
    subject = Subject(incoming.place.platform, incoming.place.workspace, user_id)
    daily, monthly, images = _new_limits(options)
    if daily is None and monthly is None and images is None:
        limits = await ctx.quotas.limits_for(subject)
        verb = "has"
    else:
        limits = await ctx.quotas.set_override(
            subject, daily_ticks=daily, monthly_ticks=monthly, daily_images=images, set_by=incoming.author.id
        )
        verb = "now has"
    summary = await ctx.quotas.summary(subject)
    text = (
        f"User `{user_id}` {verb} limits: {_limit(limits.daily_ticks)} a day, "
        f"{_limit(limits.monthly_ticks)} a month, "
        f"{limits.daily_images or 'unlimited'} images a day. "
        f"Spent today {format_usd(summary.day_ticks)}, this month {format_usd(summary.month_ticks)}."
    )
    await ctx.answer_privately(incoming, text)


def _limit(ticks: int) -> str:
    return format_usd(ticks) if ticks else "unlimited"


async def admin_command(ctx: CommandContext, incoming: Incoming) -> None:
    _options(incoming)
    if not ctx.caller.is_admin:
        raise PermissionDenied("Only admins can open the admin pages.")
    author, place = incoming.author, incoming.place
    # GROKBOT_ADMINS (exempt from limits) see every workspace; an admin the platform vouches for
    # sees only this one.
    workspace = "" if ctx.caller.is_exempt else place.workspace
    signins = SignIns(ctx.sessions, clock=ctx.clock)
    text = await admin_link(
        signins, ctx.settings.grokbot_public_url, Admin(place.platform, author.id, workspace)
    )
    await ctx.answer_privately(incoming, text)


async def settings_command(ctx: CommandContext, incoming: Incoming) -> None:
    options = _options(incoming)
    if not ctx.caller.is_admin:
        raise PermissionDenied("Only admins can see or change Grok's settings for a channel or workspace.")
    if "prompt" not in options and incoming.command and incoming.command.text:
        raise BadInput("`settings` takes `name:value` options; write a system prompt after `prompt:`.")
    prompt = _text(incoming, options) if "prompt" in options else ""
    change = settings_change(options, prompt, ctx.prices)
    if change.changes:
        await ctx.conversations.change_settings(
            incoming.place, change.changes, whole_workspace=change.whole_workspace, by=incoming.author.id
        )
    layers = await ctx.conversations.setting_layers(incoming.place)
    platform = incoming.place.platform.title()
    defaults = Defaults(ctx.settings.grokbot_model, DEFAULT_SYSTEM_PROMPT.format(platform=platform))
    await ctx.answer_privately(incoming, describe_settings(layers, defaults, saved=change))


async def digest_command(ctx: CommandContext, incoming: Incoming) -> None:
    if ctx.digests is None:
        raise BadInput("Channel digests are not available on this instance.")
    text = await ctx.digests.command(incoming, ctx.platform, is_admin=ctx.caller.is_admin)
    await ctx.platform.post_text(incoming.place, text)


HANDLERS: dict[str, Handler] = {
    "help": help_command,
    "reset": reset_command,
    "imagine": imagine_command,
    "usage": usage_command,
    "quota": quota_command,
    "digest": digest_command,
    "settings": settings_command,
    "admin": admin_command,
}
