"""The Platform verbs the engine and the jobs use, against the fake Discord: places, uploads, history,
attachments, Discord's refusals as PlatformError, admin detection, and the gateway's 4014."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest
import yarl

from adapters.discord import DiscordAdapter
from adapters.discord.gateway import bot_gateway
from adapters.discord.refusals import discord_errors
from bot.db import Sessions
from bot.errors import PlatformError, PlatformRateLimited
from bot.grok import GrokClient
from bot.platform import Image, Incoming, Place, Platform
from tests.adapters.discord.conftest import Stack, World, build_engine, discord_settings, populate
from tests.fakes.discord import FLAG_EPHEMERAL, P_SEND_MESSAGES, P_VIEW_CHANNEL, FakeDiscord
from tests.fakes.xai import FakeXAI, ScriptedReply, tiny_png


async def test_jobs_post_into_the_conversation_place(stack: Stack) -> None:
    fake, world, platform = stack.fake, stack.world, stack.adapter.platform
    asked = await fake.user_message(world.general, world.alice, "remind me later", mention_bot=True)
    await stack.idle()
    # A deferred answer to a mention: the conversation's place has the mention's id as its thread.
    first = await platform.post_text(Place("discord", world.guild, world.general, asked["id"]), "Here it is.")
    # A deferred /ask: the engine's per-user sub-conversation of the channel.
    second = await platform.post_text(
        Place("discord", world.guild, world.general, f"user:{world.alice}"), "And this."
    )
    thread = fake.add_thread(world.general, "notes")
    third = await platform.post_text(Place("discord", world.guild, world.general, thread), "In the thread.")

    assert fake.messages[first]["message_reference"]["message_id"] == asked["id"]
    assert (
        fake.messages[second]["channel_id"] == world.general
        and "message_reference" not in fake.messages[second]
    )
    assert fake.messages[third]["channel_id"] == thread


async def test_long_posts_are_split_into_replies_not_cut(stack: Stack) -> None:
    fake, world, platform = stack.fake, stack.world, stack.adapter.platform
    text = "\n".join(f"{n}. digest #{n} every weekday at 09:00 in #general, by <@1>" for n in range(60))
    first = await platform.post_text(Place("discord", world.guild, world.general), text)
    parts = [m for m in fake.messages.values() if m["channel_id"] == world.general and m["id"] >= first]
    assert len(parts) >= 2
    assert all(len(m["content"]) <= 2000 for m in parts)
    assert "".join(m["content"] for m in parts).replace("\n", "") == text.replace("\n", "")
    assert parts[1]["message_reference"]["message_id"] == parts[0]["id"]


async def test_post_images_uploads_files_with_alt_text(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    images = [Image(tiny_png(i), "image/png", f"grok-{i}.png", caption=f"a fox, take {i}") for i in range(3)]
    message_id = await stack.adapter.platform.post_images(
        Place("discord", world.guild, world.random), images, text="🎨 **a fox**"
    )
    message = fake.messages[message_id]
    assert message["content"] == "🎨 **a fox**"
    assert [a["filename"] for a in message["attachments"]] == ["grok-0.png", "grok-1.png", "grok-2.png"]
    assert [a["description"] for a in message["attachments"]] == [
        "a fox, take 0",
        "a fox, take 1",
        "a fox, take 2",
    ]
    upload = fake.requests_to("POST /channels")[-1]
    assert [f.field for f in upload.files] == ["files[0]", "files[1]", "files[2]"] and upload.json is not None


async def test_channel_history_pages_within_discord_limits(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    start = datetime.now(UTC) - timedelta(minutes=1)
    for n in range(230):
        await fake.user_message(world.random, world.bob if n % 2 else world.alice, f"note {n}")
    until = datetime.now(UTC) + timedelta(minutes=1)
    before = len(fake.requests_to("GET /channels/{channel_id}/messages"))

    found = await stack.adapter.platform.channel_history(
        Place("discord", world.guild, world.random), since=start, until=until
    )

    assert [m.text for m in found] == [f"note {n}" for n in range(230)]  # oldest first, none missing
    assert found[0].author.name == "Alice" and found[1].author.id == world.bob and not found[0].author.is_bot
    assert found[0].link == f"https://discord.com/channels/{world.guild}/{world.random}/{found[0].id}"
    reads = fake.requests_to("GET /channels/{channel_id}/messages")[before:]
    assert len(reads) == 3 and all(int(r.query["limit"]) <= 100 for r in reads)


async def test_discord_refusals_become_platform_errors(stack: Stack) -> None:
    world = stack.world
    reply = await stack.adapter.platform.start_reply(Place("discord", world.guild, world.general))
    with pytest.raises(PlatformError, match="50035"):
        await reply.update("x" * 2100)  # past Discord's 2,000 characters: 400 Invalid Form Body
    with pytest.raises(PlatformError, match="10003"):
        await stack.adapter.platform.post_text(Place("discord", world.guild, "1234567"), "nowhere")


async def test_image_attachments_on_messages_reach_grok_and_others_are_explained(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text="A blue pixel."))
    await fake.user_message(
        world.general,
        world.alice,
        "what is this?",
        mention_bot=True,
        attachments=[("pixel.png", tiny_png(2))],
    )
    await fake.wait_until(
        lambda: any(m["content"] == "A blue pixel." for m in fake.bot_messages(world.general))
    )
    parts = stack.xai.chat_requests()[-1].json["messages"][-1]["content"]
    assert any(p.get("type") == "image_url" for p in parts)

    notes = await fake.user_message(
        world.general, world.alice, "summarise", mention_bot=True, attachments=[("notes.txt", b"plain text")]
    )
    await fake.wait_until(lambda: len(fake.bot_messages(world.general)) == 2)
    await stack.idle()
    explained = fake.bot_messages(world.general)[-1]
    assert explained["message_reference"]["message_id"] == notes["id"] and "PNG" in explained["content"]
    assert len(stack.xai.chat_requests()) == 1


async def test_manage_server_makes_an_admin_for_quota(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    refused = await fake.slash("quota", {"user": world.bob}, channel_id=world.general, user_id=world.alice)
    await fake.wait_until(lambda: refused.original_edited)
    assert "Only admins" in fake.messages[refused.original_id]["content"]

    allowed = await fake.slash(
        "quota", {"user": world.bob, "daily_usd": 2.5}, channel_id=world.general, user_id=world.admin
    )
    await fake.wait_until(lambda: allowed.original_edited)
    shown = fake.messages[allowed.original_id]
    assert (
        shown["flags"] & FLAG_EPHEMERAL and f"`{world.bob}` now has limits: $2.50 a day" in shown["content"]
    )


class RecordingDigests:
    def __init__(self) -> None:
        self.seen: list[Incoming] = []

    async def command(self, incoming: Incoming, platform: Platform, *, is_admin: bool) -> str:
        self.seen.append(incoming)
        return f"digest {incoming.command.text if incoming.command else ''} noted"


async def test_digest_subcommands_become_commands_with_options(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    digests = RecordingDigests()
    stack.engine.digests = digests
    add = await fake.slash(
        "digest",
        {"schedule": "weekdays 17:30", "channel": world.random},
        subcommand="add",
        channel_id=world.general,
        user_id=world.admin,
    )
    await fake.wait_until(lambda: add.original_edited)
    remove = await fake.slash(
        "digest", {"id": 3}, subcommand="remove", channel_id=world.general, user_id=world.admin
    )
    await fake.wait_until(lambda: remove.original_edited)

    commands = [i.command for i in digests.seen]
    assert [(c.name, c.text, dict(c.options)) for c in commands if c] == [
        ("digest", "add", {"schedule": "weekdays 17:30", "channel": world.random}),
        ("digest", "remove", {"id": "3"}),
    ]
    assert fake.messages[add.original_id]["content"] == "digest add noted"
    assert digests.seen[0].author.is_admin and digests.seen[0].place == Place(
        "discord", world.guild, world.general
    )


async def test_a_portal_without_the_message_content_intent_is_explained(
    fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    async with FakeDiscord(message_content_enabled=False) as fake:
        populate(fake)
        settings = discord_settings(fake, fake_xai)
        adapter = DiscordAdapter(settings, build_engine(settings, grok, sessions), guild_ready_timeout=0.02)
        try:
            with pytest.raises(PlatformError, match="Message Content intent") as raised:
                await adapter.start()
            assert "Privileged Gateway Intents" in str(raised.value)
            assert not adapter.ready()
        finally:
            await adapter.stop()


async def test_a_wrong_token_is_explained(
    discord_fake: FakeDiscord, world: World, fake_xai: FakeXAI, grok: GrokClient, sessions: Sessions
) -> None:
    settings = discord_settings(discord_fake, fake_xai, discord_token="not-the-token")
    adapter = DiscordAdapter(settings, build_engine(settings, grok, sessions), guild_ready_timeout=0.02)
    with pytest.raises(PlatformError, match="Reset Token"):
        await adapter.start()
    await adapter.stop()
    assert discord_fake.requests[0].status == 401


async def test_a_rate_limit_longer_than_discord_py_waits_becomes_platform_rate_limited(stack: Stack) -> None:
    world = stack.world
    reply = await stack.adapter.platform.start_reply(Place("discord", world.guild, world.general))
    await reply.update("first words")
    stack.fake.inject_429("PATCH", r"^/channels/\d+/messages/\d+$", count=1, retry_after=45.0)
    with pytest.raises(PlatformRateLimited) as raised:
        await reply.update("first words and more")
    assert raised.value.retry_after == 45.0
    # Raised at the 429, not slept through: the edit was sent once and not retried after 45 s.
    assert [r.status for r in stack.fake.requests_to("PATCH /channels")] == [429]
    await reply.finish("first words and more, finally")
    assert stack.fake.messages[reply.message_id]["content"] == "first words and more, finally"
    assert [r.status for r in stack.fake.requests_to("PATCH /channels")] == [429, 200]


async def test_a_dropped_answer_is_uncertain_but_a_refused_connection_is_not() -> None:
    import aiohttp
    import pytest

    from bot.errors import PlatformError, PlatformUncertain

    with pytest.raises(PlatformUncertain):
        async with discord_errors("posting"):
            raise aiohttp.ServerDisconnectedError()
    with pytest.raises(PlatformError) as refused:
        async with discord_errors("posting"):
            raise aiohttp.ClientConnectorError(None, OSError(111, "Connection refused"))  # type: ignore[arg-type]
    assert not isinstance(refused.value, PlatformUncertain)


async def test_without_a_gateway_url_the_bot_asks_discord_for_it(
    stack_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only DISCORD_API_BASE_URL points at the fake; discord.py's own default would be the real gateway.
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("wss://gateway.discord.gg/")
    )
    stack: Stack = await stack_factory(start=False, omit=("discord_gateway_url",))
    fake, world = stack.fake, stack.world
    assert stack.settings.discord_gateway_url == "wss://gateway.discord.gg/"  # the contract's default
    async with asyncio.timeout(20):  # a guard: without the lookup it would retry the real gateway forever
        await stack.adapter.start()
    assert [r.status for r in fake.requests_to("GET /gateway/bot")] == [200]
    assert fake.gateway_connections == ["/gateway/"] and fake.identifies == 1

    stack.xai.queue_reply(ScriptedReply(text="Connected."))
    asked = await fake.user_message(world.general, world.alice, "are you there?", mention_bot=True)
    await fake.wait_until(lambda: any(m["content"] == "Connected." for m in fake.bot_messages(world.general)))
    assert fake.bot_messages(world.general)[-1]["message_reference"]["message_id"] == asked["id"]


async def test_an_explicit_gateway_url_is_used_as_is_and_a_failed_lookup_falls_back(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    fake = stack.fake
    assert not fake.requests_to("GET /gateway/bot")  # DISCORD_GATEWAY_URL was set: no lookup
    fake.inject_429("GET", r"^/gateway/bot$", count=1, retry_after=60.0)  # longer than discord.py waits
    with caplog.at_level(logging.WARNING, logger="adapters.discord"):
        url = await bot_gateway(stack.adapter.client, fallback="wss://gateway.example/")
    assert url == "wss://gateway.example/"
    assert any("GET /gateway/bot failed" in r.getMessage() for r in caplog.records)
    assert await bot_gateway(stack.adapter.client, fallback="wss://gateway.example/") == fake.gateway_url


async def test_refusals_that_mean_something_to_a_person_say_it_in_plain_words(stack: Stack) -> None:
    fake, world, platform = stack.fake, stack.world, stack.adapter.platform
    random = Place("discord", world.guild, world.random)
    fake.deny_bot(world.random, P_SEND_MESSAGES)
    with pytest.raises(PlatformError) as refused:
        await platform.post_text(random, "hello")
    assert refused.value.user_text.startswith("I can't post in this channel")
    assert "Send Messages" in refused.value.user_text and "50013" not in refused.value.user_text
    assert "403 (code 50013) Missing Permissions" in str(refused.value)  # the details, for the log

    with pytest.raises(PlatformError) as too_large:
        await platform.post_images(Place("discord", world.guild, world.general), [big_image()])
    assert "larger than this server allows" in too_large.value.user_text and "40005" in str(too_large.value)

    fake.deny_bot(world.random, P_VIEW_CHANNEL)
    now = datetime.now(UTC)
    with pytest.raises(PlatformError) as hidden:
        await platform.channel_history(random, since=now - timedelta(hours=1), until=now)
    assert hidden.value.user_text.startswith("I can't read this channel's messages")
    assert "Read Message History" in hidden.value.user_text and "50001" in str(hidden.value)

    thread = fake.add_thread(world.general, "old news")
    fake.channels[thread]["thread_metadata"].update(archived=True, locked=True)
    with pytest.raises(PlatformError) as closed:
        await platform.post_text(Place("discord", world.guild, world.general, thread), "hello")
    assert closed.value.user_text.startswith("This thread is archived") and "50083" in str(closed.value)

    with pytest.raises(PlatformError) as unknown:
        await platform.post_text(Place("discord", world.guild, "1234567"), "nowhere")
    assert unknown.value.user_text == ""  # means nothing to a person: the engine says it generically


def big_image() -> Image:
    """Past Discord's 10 MiB a file, within its 25 MiB a request."""
    return Image(b"\0" * (10 * 1024 * 1024 + 1), "image/png", "big.png")
