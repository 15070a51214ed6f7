"""The slash commands (ask, imagine, usage, quota, digest, settings, admin, reset, help) as discord.py app
commands, each turned into a `Command` value and handed to the adapter's runner; which of them answer
privately.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from bot.command_registry import REGISTRY
from bot.platform import Command

# Answers only the caller should see: deferred as ephemeral, so the "thinking…" is private too.
PRIVATE_COMMANDS = frozenset({"usage", "quota", "settings", "admin", "reset", "help"})

Interaction = discord.Interaction[Any]
Tree = app_commands.CommandTree[Any]


class Runner(Protocol):
    def __call__(
        self, interaction: Interaction, command: Command, *, attachments: Sequence[discord.Attachment] = ()
    ) -> Awaitable[None]:
        """Check access, defer within Discord's 3 s, and hand the command to the engine."""
        ...


def is_private(command: Command) -> bool:
    """Answered only to the caller (ephemeral)."""
    return command.name in PRIVATE_COMMANDS


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


def register_commands(tree: Tree, run: Runner) -> None:
    """Define every command on `tree`; callbacks only convert options and call `run`."""
    _register_ask(tree, run)
    _register_imagine(tree, run)
    _register_usage(tree, run)
    _register_quota(tree, run)
    tree.add_command(_digest_group(run))
    _register_settings(tree, run)
    _register_admin(tree, run)
    _register_reset_and_help(tree, run)


def _register_ask(tree: Tree, run: Runner) -> None:
    @tree.command(name="ask", description="Ask Grok; the answer streams in")
    @app_commands.describe(
        prompt="Your question",
        image="A JPEG or PNG image (up to 10 MiB) to ask about",
        model="A Grok model name (default: the bot's model)",
        reasoning="Let the model think first, with low or high effort",
        defer="Send it as a deferred request; the answer is posted when ready",
        search="Live web and X search (default auto: as this channel allows)",
    )
    async def ask(
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
        reasoning: Literal["low", "high"] | None = None,
        defer: bool | None = None,
        search: Literal["auto", "off", "web", "x"] | None = None,
    ) -> None:
        options = _options(model=model, reasoning=reasoning, defer=defer, search=search)
        await run(interaction, Command("ask", options, text=prompt), attachments=[image] if image else [])


def _register_imagine(tree: Tree, run: Runner) -> None:
    @tree.command(name="imagine", description="Generate images with Grok")
    @app_commands.describe(prompt="What to draw", count="How many images (1-4)")
    async def imagine(
        interaction: Interaction,
        prompt: app_commands.Range[str, 1, 1000],
        count: app_commands.Range[int, 1, 4] | None = None,
    ) -> None:
        await run(interaction, Command("imagine", _options(count=count), text=prompt))


def _register_usage(tree: Tree, run: Runner) -> None:
    @tree.command(name="usage", description="Your Grok usage and what is left of your quota")
    @app_commands.describe(period="day or month (default: both)")
    async def usage(interaction: Interaction, period: Literal["day", "month"] | None = None) -> None:
        await run(interaction, Command("usage", _options(period=period)))


def _register_quota(tree: Tree, run: Runner) -> None:
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


def _digest_group(run: Runner) -> app_commands.Group:
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

    _add_digest_subcommands(digest, run)
    return digest


def _add_digest_subcommands(digest: app_commands.Group, run: Runner) -> None:
    """list, remove and now."""

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


def _register_settings(tree: Tree, run: Runner) -> None:
    @tree.command(name="settings", description="Admins: Grok's system prompt, model and search tools here")
    @app_commands.describe(
        scope="This channel (default) or the whole server",
        prompt="The system prompt (`default` unsets it, as for every option)",
        model="The default Grok model",
        tools="Which tools Grok may use: web,x,code or none",
        domains="Web domains to keep to (a.com,b.org) or leave out (-a.com), or none",
        handles="X handles whose posts to keep to (xai,grok), or none",
    )
    async def settings(
        interaction: Interaction,
        scope: Literal["channel", "workspace"] | None = None,
        prompt: app_commands.Range[str, 1, 4000] | None = None,
        model: app_commands.Range[str, 1, 64] | None = None,
        tools: app_commands.Range[str, 1, 32] | None = None,
        domains: app_commands.Range[str, 1, 400] | None = None,
        handles: app_commands.Range[str, 1, 400] | None = None,
    ) -> None:
        options = _options(
            scope=scope, prompt=prompt, model=model, tools=tools, domains=domains, handles=handles
        )
        await run(interaction, Command("settings", options))


def _register_admin(tree: Tree, run: Runner) -> None:
    @tree.command(name="admin", description="Admins: a private one-time sign-in link to the admin pages")
    async def admin(interaction: Interaction) -> None:
        await run(interaction, Command("admin"))


def _register_reset_and_help(tree: Tree, run: Runner) -> None:
    @tree.command(name="reset", description="Forget this conversation's history")
    async def reset(interaction: Interaction) -> None:
        await run(interaction, Command("reset"))

    @tree.command(name="help", description="The commands, or one command's options")
    @app_commands.describe(command="The command whose options to show (default: every command)")
    @app_commands.choices(command=[app_commands.Choice(name=spec.name, value=spec.name) for spec in REGISTRY])
    async def help_(interaction: Interaction, command: str | None = None) -> None:
        await run(interaction, Command("help", text=command or ""))
