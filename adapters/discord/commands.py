"""The slash commands (ask, imagine, usage, quota, digest, admin, reset, help) as discord.py app
commands, each turned into a `Command` value, and the comparison that decides whether Discord needs
a re-sync.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from bot.platform import Command

# Answers only the caller should see: deferred as ephemeral, so the "thinking…" is private too.
PRIVATE_COMMANDS = frozenset({"usage", "quota", "admin", "reset", "help"})

Interaction = discord.Interaction[Any]


class Runner(Protocol):
    def __call__(
        self, interaction: Interaction, command: Command, *, attachments: Sequence[discord.Attachment] = ()
    ) -> Awaitable[None]:
        """Check access, defer within Discord's 3 s, and hand the command to the engine."""
        ...


def _options(**values: object) -> dict[str, str]:
    """Options the user gave, as the engine's strings (bools as true/false)."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, discord.abc.Snowflake):
            out[key] = str(value.id)
        else:
            out[key] = str(value)
    return out


def register_commands(tree: app_commands.CommandTree[Any], run: Runner) -> None:
    """Define every command on `tree`; callbacks only convert options and call `run`."""

    @tree.command(name="ask", description="Ask Grok; the answer streams in")
    @app_commands.describe(
        prompt="Your question",
        image="A JPEG or PNG image (up to 10 MiB) to ask about",
        model="A Grok model name (default: the bot's model)",
        reasoning="Let the model think first, with low or high effort",
        defer="Send it as a deferred request; the answer is posted when ready",
    )
    async def ask(
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
        reasoning: Literal["low", "high"] | None = None,
        defer: bool | None = None,
    ) -> None:
        options = _options(model=model, reasoning=reasoning, defer=defer)
        await run(interaction, Command("ask", options, text=prompt), attachments=[image] if image else [])

    @tree.command(name="imagine", description="Generate images with Grok")
    @app_commands.describe(prompt="What to draw", count="How many images (1-4)")
    async def imagine(
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 1000],
        count: app_commands.Range[int, 1, 4] | None = None,
    ) -> None:
        await run(interaction, Command("imagine", _options(count=count), text=prompt))

    @tree.command(name="usage", description="Your Grok usage and what is left of your quota")
    @app_commands.describe(period="day or month (default: both)")
    async def usage(interaction: Interaction, period: Literal["day", "month"] | None = None) -> None:
        await run(interaction, Command("usage", _options(period=period)))

    @tree.command(name="quota", description="Admins: show or set a user's limits")
    @app_commands.describe(
        user="Whose limits",
        daily_usd="New daily spend limit in US dollars (0 = none)",
        monthly_usd="New monthly spend limit in US dollars (0 = none)",
        images="New generated images per day (0 = none)",
    )
    async def quota(
        interaction: Interaction,
        user: discord.User,
        daily_usd: app_commands.Range[float, 0, 100000] | None = None,
        monthly_usd: app_commands.Range[float, 0, 100000] | None = None,
        images: app_commands.Range[int, 0, 100000] | None = None,
    ) -> None:
        options = _options(user=user, daily_usd=daily_usd, monthly_usd=monthly_usd, images=images)
        await run(interaction, Command("quota", options))

    digest = app_commands.Group(name="digest", description="Scheduled channel digests")

    @digest.command(name="add", description="Post a digest of a channel on a schedule")
    @app_commands.describe(
        schedule="09:00, mon 09:00, weekdays 17:30, or cron like 30 9 * * 1-5 (optionally tz:Europe/Berlin)",
        channel="The channel to summarise (default: this one)",
    )
    async def digest_add(
        interaction: Interaction,
        schedule: app_commands.Range[str, 1, 200],
        channel: discord.TextChannel | None = None,
    ) -> None:
        await run(interaction, Command("digest", _options(schedule=schedule, channel=channel), text="add"))

    @digest.command(name="list", description="The digests scheduled in this server")
    async def digest_list(interaction: Interaction) -> None:
        await run(interaction, Command("digest", text="list"))

    @digest.command(name="remove", description="Stop a scheduled digest")
    @app_commands.describe(id="The digest's number, from /digest list")
    async def digest_remove(interaction: Interaction, id: app_commands.Range[int, 1]) -> None:
        await run(interaction, Command("digest", _options(id=id), text="remove"))

    @digest.command(name="now", description="Post a digest of a channel now")
    @app_commands.describe(channel="The channel to summarise (default: this one)")
    async def digest_now(interaction: Interaction, channel: discord.TextChannel | None = None) -> None:
        await run(interaction, Command("digest", _options(channel=channel), text="now"))

    tree.add_command(digest)

    @tree.command(name="admin", description="Admins: a private one-time sign-in link to the admin pages")
    async def admin(interaction: Interaction) -> None:
        await run(interaction, Command("admin"))

    @tree.command(name="reset", description="Forget this conversation's history")
    async def reset(interaction: Interaction) -> None:
        await run(interaction, Command("reset"))

    @tree.command(name="help", description="The commands and their options")
    async def help_(interaction: Interaction) -> None:
        await run(interaction, Command("help"))


# -- deciding whether to sync -----------------------------------------------------------------

# contexts, integration_types and dm_permission exist only for globally-scoped commands (Discord's
# GET leaves them out of guild commands), so they are compared for the global scope only.
_COMMAND_KEYS = ("name", "description", "type", "options", "default_member_permissions", "nsfw")
GUILD_INSTALL, USER_INSTALL = 0, 1
_OPTION_KEYS = (
    "type",
    "name",
    "description",
    "required",
    "choices",
    "options",
    "channel_types",
    "min_value",
    "max_value",
    "min_length",
    "max_length",
    "autocomplete",
)


def _unset(value: Any) -> bool:
    """Discord leaves out what is unset; discord.py sends it as null, false or []. A 0 is a value."""
    return value is None or value is False or (isinstance(value, list | dict | str) and not value)


def _canonical_option(option: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _OPTION_KEYS:
        value: Any = option.get(key)
        if _unset(value):
            continue
        if key == "options":
            value = [_canonical_option(o) for o in value]
        elif key == "choices":
            value = [{"name": c["name"], "value": c["value"]} for c in value]
        out[key] = value
    return out


def _global_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    """contexts, integration_types and dm_permission with Discord's defaults filled in for null/missing."""
    installs = sorted(payload.get("integration_types") or [GUILD_INSTALL])
    contexts = payload.get("contexts")
    if contexts is None:  # every context the installation types allow
        contexts = [0, 1, 2] if USER_INSTALL in installs else [0, 1]
    dm_permission = payload.get("dm_permission")
    return {
        "contexts": sorted(contexts),
        "integration_types": installs,
        "dm_permission": True if dm_permission is None else bool(dm_permission),
    }


def canonical_commands(
    payloads: Sequence[Mapping[str, Any]], *, scope: Literal["global", "guild"]
) -> list[dict[str, Any]]:
    """Command payloads reduced to what defines them in `scope`, so ours and Discord's copy compare equal."""
    commands = []
    for payload in payloads:
        command: dict[str, Any] = {"type": 1}
        for key in _COMMAND_KEYS:
            value: Any = payload.get(key)
            if key == "default_member_permissions" and value is not None:
                value = str(value)  # discord.py sends an int, Discord answers a string
            if _unset(value):
                continue
            command[key] = [_canonical_option(o) for o in value] if key == "options" else value
        if scope == "global":
            command.update(_global_fields(payload))
        commands.append(command)
    return sorted(commands, key=lambda c: (c["type"], c["name"]))
