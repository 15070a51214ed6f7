"""The chat commands other than `ask`: help, imagine, usage, quota, digest, admin, reset.

Each handler validates its options (a BadInput says what is accepted) and answers through the
Platform; errors propagate to the engine, which alone turns them into user text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Protocol

from PIL import Image as PILImage

from bot import store
from bot.admin import Admin, SignIns, admin_link, usage_picture
from bot.errors import BadInput, PermissionDenied
from bot.grok import GeneratedImage
from bot.platform import Image, Incoming, Platform
from bot.quotas import Subject, format_usd
from bot.settings import usd_to_ticks

if TYPE_CHECKING:
    from bot.engine import Engine

COMMAND_LIST = "Commands: ask, imagine, usage, quota, digest, admin, reset, help."

HELP_TEXT = """**Grok commands**
• `ask <question>` — answers, streamed. Options: `model:<name>`, `reasoning:low|high` (shows the \
model thinking), `defer:true` (answer posted when ready); attach a JPEG/PNG to ask about it.
• `imagine <prompt>` — generates images. Option: `count:1-4`.
• `usage` — your spend, tokens, images and what is left of your quota. Option: `period:day|month`.
• `quota user:<user> [daily_usd:<n>] [monthly_usd:<n>] [images:<n>]` — admins: show or set limits.
• `digest add schedule:<when> [channel:<channel>]` · `digest list` · `digest remove id:<n>` · \
`digest now` — scheduled channel summaries. `<when>`: `09:00`, `mon 09:00`, or cron `0 9 * * 1-5`.
• `admin` — admins: a private one-time sign-in link to the admin pages (spend charts, users, limits).
• `reset` — forget this conversation's history.
• `help` — this list.
Options are written `name:value` before the text. Mention me or reply to my messages to keep \
talking; threads I answer in are conversations."""

TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}


class DigestBook(Protocol):
    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        """Run `digest add|list|remove|now` for this incoming; return the text to answer with."""
        ...


def parse_bool(value: str, *, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise BadInput(f"`{name}` accepts true or false, not `{value}`.")


def _only_options(incoming: Incoming, allowed: set[str], *, usage: str) -> dict[str, str]:
    assert incoming.command is not None
    options = dict(incoming.command.options)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise BadInput(f"Unknown option `{unknown[0]}`. Usage: `{usage}`")
    return options


async def help_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    await platform.post_text(incoming.place, HELP_TEXT, private_to=incoming.author.id)


async def reset_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    place = await engine.conversation_place(incoming)
    forgotten = 0 if place is None else await store.forget_conversation(engine.sessions, place)
    text = (
        f"🧹 Forgot this conversation ({forgotten} messages). The next question starts fresh."
        if forgotten
        else "There was nothing to forget here: the next question starts fresh."
    )
    await platform.post_text(incoming.place, text, private_to=incoming.author.id)


async def imagine_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    assert incoming.command is not None
    options = _only_options(incoming, {"count", "prompt"}, usage="imagine [count:1-4] <prompt>")
    prompt = (options.get("prompt", "") + " " + incoming.command.text).strip()
    if not prompt:
        raise BadInput("Describe the image to generate: `imagine [count:1-4] <prompt>`.")
    raw = options.get("count", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 4:
        raise BadInput(f"`count` accepts a whole number from 1 to 4, not `{raw}`.")
    await engine.imagine(incoming, platform, prompt=prompt, count=int(raw))


async def usage_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    options = _only_options(incoming, {"period"}, usage="usage [period:day|month]")
    period = options.get("period", "").lower()
    if period not in ("", "day", "today", "month"):
        raise BadInput("`period` accepts `day` or `month`.")
    subject = engine.payer(incoming)
    summary = await engine.quotas.summary(subject, is_admin=engine.is_exempt(incoming))
    lines = [f"**Your Grok usage** ({engine.settings.grokbot_timezone})"]
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
    lines.append(
        f"Tokens this month: {summary.prompt_tokens:,} in · {summary.completion_tokens:,} out"
        f" · {summary.reasoning_tokens:,} reasoning"
    )
    if summary.exempt:
        lines.append("You are an admin: limits do not apply to you.")
    text = "\n".join(lines)
    if not platform.capabilities.private_files:  # a picture would be seen by all
        await platform.post_text(incoming.place, text, private_to=incoming.author.id)
        return
    limit = 0 if summary.exempt else summary.limits.daily_ticks
    picture = await usage_picture(
        engine.sessions, engine.settings, subject, daily_limit_ticks=limit, clock=engine.clock
    )
    await platform.post_images(incoming.place, [picture], text=text)


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


async def quota_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    usage = "quota user:<user> [daily_usd:<n>] [monthly_usd:<n>] [images:<n>]"
    options = _only_options(incoming, {"user", "daily_usd", "monthly_usd", "images"}, usage=usage)
    if not engine.is_admin(incoming):
        raise PermissionDenied("Only admins can view or change quotas. Use `usage` to see your own.")
    if "user" not in options:
        raise BadInput(f"Name the user: `{usage}`")
    user_id = parse_user(options["user"])
    subject = Subject(incoming.place.platform, incoming.place.workspace, user_id)
    daily = parse_usd(options["daily_usd"], name="daily_usd") if "daily_usd" in options else None
    monthly = parse_usd(options["monthly_usd"], name="monthly_usd") if "monthly_usd" in options else None
    images = None
    if "images" in options:
        if not options["images"].isdigit():
            raise BadInput("`images` accepts a whole number of images per day (0 = no limit).")
        images = int(options["images"])
    if daily is None and monthly is None and images is None:
        limits = await engine.quotas.limits_for(subject)
        verb = "has"
    else:
        limits = await engine.quotas.set_override(
            subject, daily_ticks=daily, monthly_ticks=monthly, daily_images=images, set_by=incoming.author.id
        )
        verb = "now has"
    summary = await engine.quotas.summary(subject)
    text = (
        f"User `{user_id}` {verb} limits: {_limit(limits.daily_ticks)} a day, "
        f"{_limit(limits.monthly_ticks)} a month, "
        f"{limits.daily_images or 'unlimited'} images a day. "
        f"Spent today {format_usd(summary.day_ticks)}, this month {format_usd(summary.month_ticks)}."
    )
    await platform.post_text(incoming.place, text, private_to=incoming.author.id)


def _limit(ticks: int) -> str:
    return format_usd(ticks) if ticks else "unlimited"


async def admin_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    _only_options(incoming, set(), usage="admin")
    if not engine.is_admin(incoming):
        raise PermissionDenied("Only admins can open the admin pages.")
    author, place = incoming.author, incoming.place
    # GROKBOT_ADMINS see every workspace; an admin the platform vouches for sees only this one.
    workspace = "" if engine.settings.is_admin(place.platform, author.id) else place.workspace
    signins = SignIns(engine.sessions, clock=engine.clock)
    text = await admin_link(
        signins, engine.settings.grokbot_public_url, Admin(place.platform, author.id, workspace)
    )
    await platform.post_text(place, text, private_to=author.id)


async def digest_command(engine: Engine, incoming: Incoming, platform: Platform) -> None:
    if engine.digests is None:
        raise BadInput("Channel digests are not available on this instance.")
    text = await engine.digests.command(incoming, platform, is_admin=engine.is_admin(incoming))
    await platform.post_text(incoming.place, text)


Handler = Callable[["Engine", Incoming, Platform], Awaitable[None]]
HANDLERS: dict[str, Handler] = {
    "help": help_command,
    "reset": reset_command,
    "imagine": imagine_command,
    "usage": usage_command,
    "quota": quota_command,
    "digest": digest_command,
    "admin": admin_command,
}


# -- images out -----------------------------------------------------------------------------------

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def fit_images(images: Sequence[GeneratedImage], *, limit: int) -> list[Image]:
    """Images as files to post, re-encoded as JPEG when one is larger than the upload limit."""
    fitted = []
    for number, generated in enumerate(images, start=1):
        data, mime = generated.data, generated.mime_type
        if len(data) > limit:
            data, mime = _shrink(data, limit)
        extension = EXTENSIONS.get(mime, "png")
        fitted.append(Image(data, mime, f"grok-{number}.{extension}", caption=generated.revised_prompt))
    return fitted


def _shrink(data: bytes, limit: int) -> tuple[bytes, str]:
    with PILImage.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        for quality in (90, 80, 70, 55, 40):
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), "image/jpeg"
            rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)))
    raise BadInput("The generated image is larger than this chat accepts even after compression.")


def image_caption(prompt: str, images: Sequence[Image]) -> str:
    revised = [image.caption for image in images if image.caption and image.caption != prompt]
    lines = [f"🎨 **{prompt}**"]
    if revised:
        lines.append("Grok's revised prompt: " + revised[0])
    return "\n".join(lines)
