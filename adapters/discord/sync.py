"""Discord's copy of the slash commands kept in step with ours: compared in a canonical form and
synced only when they differ (guild sync for DISCORD_GUILD_IDS, else global), with a warning about
global commands left beside guild ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import discord
from discord import app_commands

from adapters.discord.refusals import discord_errors
from bot.errors import PlatformError

log = logging.getLogger(__name__)

Scope = Literal["global", "guild"]


async def sync_commands(
    client: discord.Client, tree: app_commands.CommandTree[Any], guild_ids: Sequence[str]
) -> list[str]:
    """Sync each scope whose commands changed: the guilds of `guild_ids`, else the global scope.
    The scopes synced ("global" or guild ids); a scope that fails is logged and left."""
    app_id = client.application_id
    assert app_id is not None
    guilds: list[discord.Object | None] = [discord.Object(int(g)) for g in guild_ids]
    if guilds:
        await warn_about_global_commands(client, app_id)
    synced = []
    for guild in guilds or [None]:
        name = "global" if guild is None else str(guild.id)
        try:
            async with discord_errors(f"syncing {name} commands"):
                changed = await _sync_scope(client, tree, app_id, guild)
        except PlatformError as exc:
            log.warning("Discord: could not sync %s slash commands: %s", name, exc)
            continue
        if changed:
            synced.append(name)
            log.info("Discord: synced %d slash commands (%s)", len(tree.get_commands(guild=guild)), name)
        else:
            log.info("Discord: %s slash commands are up to date", name)
    return synced


async def _sync_scope(
    client: discord.Client, tree: app_commands.CommandTree[Any], app_id: int, guild: discord.Object | None
) -> bool:
    """Sync one scope if Discord's copy differs from ours; whether it did."""
    if guild is None:
        theirs = await client.http.get_global_commands(app_id)
    else:
        tree.copy_global_to(guild=guild)
        theirs = await client.http.get_guild_commands(app_id, guild.id)
    ours = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    scope: Scope = "global" if guild is None else "guild"
    if canonical_commands(ours, scope=scope) == canonical_commands(theirs, scope=scope):
        return False
    await tree.sync(guild=guild)
    return True


async def warn_about_global_commands(client: discord.Client, app_id: int) -> None:
    """Global commands left from a run without DISCORD_GUILD_IDS show beside the guild ones."""
    try:
        async with discord_errors("listing global commands"):
            existing = await client.http.get_global_commands(app_id)
    except PlatformError as exc:
        log.debug("Discord: could not list global slash commands: %s", exc)
        return
    if existing:
        names = ", ".join(sorted(f"/{c['name']}" for c in existing))
        log.warning(
            "Discord: this application also has %d global slash commands (%s). With DISCORD_GUILD_IDS "
            "set, grokbot syncs guild commands only, so these show a second time in those servers' "
            "command pickers. grokbot does not delete them; to clear them, bulk-overwrite the global "
            "list with an empty one: PUT %s/applications/%s/commands with the body [] and the header "
            "'Authorization: Bot <DISCORD_TOKEN>'.",
            len(existing),
            names,
            discord.http.Route.BASE,
            app_id,
        )


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


def canonical_commands(payloads: Sequence[Mapping[str, Any]], *, scope: Scope) -> list[dict[str, Any]]:
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
