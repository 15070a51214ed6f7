"""grokbot on Discord: `DiscordAdapter(settings, engine)` logs in, syncs the slash commands when they
changed, connects to the gateway, and hands messages and commands to the engine.

For the composition root:

    adapter = DiscordAdapter(settings, engine)
    await adapter.start()        # returns once the gateway is READY; PlatformError says what to fix
    adapter.platform             # the long-lived Platform for jobs (deferred answers, digests)
    adapter.ready()              # for /readyz
    await adapter.wait()         # until the gateway stops for good (raises PlatformError on a fatal close)
    await adapter.idle()         # until no message or command is being answered
    await adapter.stop()         # finishes in-flight answers (grace period), then closes the connection

`check_discord(settings)` is Discord's part of `grokbot check`.

The modules: adapter (lifecycle, events), check (the token and the Message Content intent), client
(intents, invite permissions, the discord.py client), gateway (where to connect), sync (slash command
sync), commands (their definitions), access (allow-lists), incoming (Discord → Incoming), places
(Place convention, Target), platform (DiscordPlatform, ChannelReply), event_platform (per-message
view), interaction and webhook (slash command answers), messages (what a message carries), refusals
(Discord's errors as PlatformError).
"""

from __future__ import annotations

from adapters.discord.adapter import DiscordAdapter
from adapters.discord.check import check_discord
from adapters.discord.platform import DiscordPlatform

__all__ = ["DiscordAdapter", "DiscordPlatform", "check_discord"]
