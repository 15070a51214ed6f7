"""Slash commands through the real discord.py client: defer within 3 s, stream by editing the original
response, images, ephemeral errors, the 15-minute token, access lists and command sync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from tests.adapters.discord.conftest import Stack, World
from tests.fakes.discord import FLAG_EPHEMERAL, FakeDiscord
from tests.fakes.xai import Fault, ScriptedReply, tiny_png

ANSWER = (
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen. "
    "It happens in chloroplasts, mostly in leaves, and feeds almost every food chain on Earth."
)


def _original(stack: Stack) -> dict[str, Any]:
    interaction = list(stack.fake.interactions.values())[-1]
    return stack.fake.messages[interaction.original_id]


async def test_ask_defers_then_streams_into_the_original_response(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text=ANSWER, tokens_per_second=60, chunk_chars=4))

    interaction = await fake.slash("ask", {"prompt": "how does photosynthesis work?"}, **_in(stack))
    await fake.wait_until(
        lambda: interaction.original_id != "" and fake.versions(interaction.original_id)[-1] == ANSWER
    )

    callback = fake.requests_to("POST /interactions")[0]
    assert callback.json == {"type": 5} and callback.status == 200  # deferred within the deadline
    edits = [r for r in fake.requests_to("PATCH /webhooks") if r.path.endswith("/@original")]
    assert len(edits) >= 3, [r.json for r in edits]
    assert all(r.status == 200 for r in edits)
    shown = fake.versions(interaction.original_id)
    assert any(v.endswith("⚪") for v in shown[:-1]) and shown[-1] == ANSWER
    assert [m["content"] for m in fake.bot_messages(world.general)] == [ANSWER]
    prompt = stack.xai.chat_requests()[-1].json["messages"][-1]["content"]
    assert "how does photosynthesis work?" in str(prompt)


def _in(stack: Stack, *, user: str = "", channel: str = "") -> dict[str, Any]:
    return {"channel_id": channel or stack.world.general, "user_id": user or stack.world.alice}


async def test_ask_with_an_image_sends_it_to_grok_as_image_input(stack: Stack) -> None:
    fake = stack.fake
    stack.xai.queue_reply(ScriptedReply(text="A small blue square."))
    interaction = await fake.slash(
        "ask", {"prompt": "what is this?"}, attachments={"image": ("square.png", tiny_png(1))}, **_in(stack)
    )
    await fake.wait_until(
        lambda: bool(interaction.original_id) and _original(stack)["content"] == "A small blue square."
    )
    content = stack.xai.chat_requests()[-1].json["messages"][-1]["content"]
    images = [part for part in content if part.get("type") == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_imagine_uploads_the_images_as_files_with_the_revised_prompt(stack: Stack) -> None:
    fake = stack.fake
    interaction = await fake.slash("imagine", {"prompt": "a red fox", "count": 2}, **_in(stack))
    await fake.wait_until(lambda: bool(interaction.original_id) and len(_original(stack)["attachments"]) == 2)
    await stack.idle()
    message = _original(stack)
    assert "a red fox" in message["content"] and "A detailed rendering of: a red fox" in message["content"]
    files = [fake.cdn[a["url"].split("?")[0].removeprefix(fake.base)] for a in message["attachments"]]
    assert [f[0] for f in files] == ["image/png", "image/png"] and files[0][1] == tiny_png(0)
    assert all(a["description"] for a in message["attachments"])  # alt text: the revised prompt


async def test_the_answer_continues_in_the_channel_when_the_interaction_token_expires(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text=ANSWER, tokens_per_second=40, chunk_chars=4))
    interaction = await fake.slash("ask", {"prompt": "explain photosynthesis"}, **_in(stack))
    await fake.wait_until(
        lambda: bool(interaction.original_id) and fake.versions(interaction.original_id)[-1] != ""
    )
    await fake.wait_until(lambda: "⚪" in fake.versions(interaction.original_id)[-1])
    fake.advance(15 * 60 + 1)  # Discord's clock: the interaction token is now expired

    await fake.wait_until(lambda: any(m["content"] == ANSWER for m in fake.bot_messages(world.general)))
    final = next(m for m in fake.bot_messages(world.general) if m["content"] == ANSWER)
    assert final["id"] != interaction.original_id
    assert final["message_reference"]["message_id"] == interaction.original_id  # continues below it
    assert any(r.status == 401 for r in fake.requests_to("PATCH /webhooks"))  # 50027 was seen


async def test_an_answer_past_the_token_lifetime_goes_to_the_channel(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(clock=lambda: datetime.now(UTC) + timedelta(minutes=16))
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text="Late but here."))
    interaction = await fake.slash("ask", {"prompt": "hello?"}, **_in(stack))
    await fake.wait_until(
        lambda: any(m["content"] == "Late but here." for m in fake.bot_messages(world.general))
    )
    await stack.idle()
    assert interaction.acked  # the defer still went out within 3 s
    assert not fake.requests_to("PATCH /webhooks")  # the adapter knew the token was too old to use
    answer = fake.bot_messages(world.general)[-1]
    assert answer["message_reference"]["message_id"] == interaction.original_id  # below the "thinking…"


async def test_errors_before_the_answer_are_ephemeral(stack_factory: Callable[..., Any]) -> None:
    stack: Stack = await stack_factory(grokbot_user_daily_usd="0.0000001")
    fake = stack.fake
    interaction = await fake.slash("ask", {"prompt": "expensive question"}, **_in(stack))
    await fake.wait_until(lambda: len(interaction.followups) == 1)
    await stack.idle()
    followup = fake.messages[interaction.followups[0]]
    assert followup["flags"] & FLAG_EPHEMERAL and "limit" in followup["content"]
    assert interaction.original_deleted  # the public "thinking…" is gone
    assert not fake.bot_messages(stack.world.general)  # nobody else sees anything
    assert not stack.xai.chat_requests()


async def test_usage_is_answered_privately(stack: Stack) -> None:
    fake = stack.fake
    interaction = await fake.slash("usage", {"period": "day"}, **_in(stack))
    await fake.wait_until(lambda: interaction.original_edited)
    message = _original(stack)
    assert message["flags"] & FLAG_EPHEMERAL and "Today" in message["content"]
    assert fake.requests_to("POST /interactions")[0].json == {"type": 5, "data": {"flags": 64}}


async def test_help_names_a_command_from_its_choices_and_shows_that_commands_options(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    (help_,) = [c for c in fake.commands[world.guild] if c["name"] == "help"]
    (option,) = help_["options"]
    offered = [choice["value"] for choice in option["choices"]]
    assert option["name"] == "command" and not option.get("required")
    assert {"ask", "imagine", "digest", "settings", "help"} <= set(offered)

    interaction = await fake.slash("help", {"command": "imagine"}, **_in(stack))
    await fake.wait_until(lambda: interaction.original_edited)
    one = _original(stack)["content"]
    assert one.startswith("**imagine**") and "`count:" in one and "**ask**" not in one

    everything = await fake.slash("help", {}, **_in(stack))
    await fake.wait_until(lambda: everything.original_edited)
    listed = fake.messages[everything.original_id]["content"]
    assert (
        "imagine" in listed
        and "ask" in listed
        and "digest" in listed
        and not listed.startswith("**imagine**")
    )


async def test_outside_the_allow_lists_messages_are_ignored_and_commands_refused(
    stack_factory: Callable[..., Any], world: World
) -> None:
    stack: Stack = await stack_factory(grokbot_allowed_channels=world.random)
    fake = stack.fake
    await fake.user_message(world.general, world.alice, "hello?", mention_bot=True)
    interaction = await fake.slash("ask", {"prompt": "hello?"}, **_in(stack))
    await fake.wait_until(lambda: interaction.acked)
    refusal = _original(stack)
    assert refusal["flags"] & FLAG_EPHEMERAL and "not enabled here" in refusal["content"]
    stack.xai.queue_reply(ScriptedReply(text="Random is allowed."))
    await fake.user_message(world.random, world.alice, "hello?", mention_bot=True)
    await fake.wait_until(
        lambda: any(m["content"] == "Random is allowed." for m in fake.bot_messages(world.random))
    )
    assert len(stack.xai.chat_requests()) == 1  # the general-channel mention never reached Grok


async def test_the_role_list_decides_alike_for_messages_and_commands(
    stack_factory: Callable[..., Any], discord_fake: FakeDiscord, world: World
) -> None:
    fake = discord_fake
    grok_users = fake.add_role(world.guild, "grok users")
    carol = fake.add_user("carol", guild_id=world.guild, roles=[grok_users])
    stack: Stack = await stack_factory(grokbot_allowed_roles=grok_users)
    thread = fake.add_thread(world.general, "questions")  # the role list binds in threads too

    await fake.user_message(thread, world.bob, "hello?", mention_bot=True)  # bob lacks the role
    refused = await fake.slash("ask", {"prompt": "hello?"}, channel_id=thread, user_id=world.bob)
    await fake.wait_until(lambda: refused.acked)
    refusal = fake.messages[refused.original_id]
    assert refusal["flags"] & FLAG_EPHEMERAL and "not enabled here" in refusal["content"]
    await _answered_both_ways(stack, carol, thread)  # the role
    await _answered_both_ways(stack, world.admin, thread)  # Manage Server skips the role list
    await stack.idle()
    assert len(stack.xai.chat_requests()) == 4  # bob's message and command never reached Grok


async def _answered_both_ways(stack: Stack, user: str, channel: str) -> None:
    """`user` is answered in `channel` when they mention the bot, and when they run /ask."""
    fake = stack.fake
    stack.xai.queue_reply(ScriptedReply(text=f"Said to {user}."))
    await fake.user_message(channel, user, "hello?", mention_bot=True)
    await fake.wait_until(lambda: any(m["content"] == f"Said to {user}." for m in fake.bot_messages(channel)))
    stack.xai.queue_reply(ScriptedReply(text=f"Asked by {user}."))
    asked = await fake.slash("ask", {"prompt": "hello?"}, channel_id=channel, user_id=user)
    await fake.wait_until(lambda: fake.versions(asked.original_id)[-1:] == [f"Asked by {user}."])


async def test_commands_are_synced_to_the_guild_only_when_they_changed(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    puts = fake.requests_to("PUT /applications")
    assert [r.path for r in puts] == [f"/applications/{fake.application_id}/guilds/{world.guild}/commands"]
    names = sorted(c["name"] for c in fake.commands[world.guild])
    assert names == ["admin", "ask", "digest", "help", "imagine", "quota", "reset", "settings", "usage"]

    again = await stack.new_adapter()
    await again.start()
    assert len(fake.requests_to("PUT /applications")) == 1 and again.synced == []
    assert stack.adapter.synced == [world.guild]

    fake.commands[world.guild][0]["description"] = "an older wording"  # a deploy changed a definition
    changed = await stack.new_adapter()
    await changed.start()
    assert changed.synced == [world.guild] and len(fake.requests_to("PUT /applications")) == 2
    query = parse_qs(urlsplit(again.invite_url).query)
    assert query["client_id"] == [fake.application_id] and query["scope"] == ["bot applications.commands"]
    wanted = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        use_application_commands=True,
    )
    assert query["permissions"] == [str(wanted.value)]


async def test_a_stalled_interaction_webhook_moves_the_answer_to_the_channel(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.adapter.webhook_stall_timeout = 0.5  # discord.py's webhook adapter would sleep the whole 429
    fake.inject_429("PATCH", r"/messages/@original$", count=1, retry_after=20.0)
    stack.xai.queue_reply(ScriptedReply(text="Delivered anyway."))
    interaction = await fake.slash("ask", {"prompt": "hello?"}, **_in(stack))
    await fake.wait_until(
        lambda: any(m["content"] == "Delivered anyway." for m in fake.bot_messages(world.general))
    )
    answer = next(m for m in fake.bot_messages(world.general) if m["content"] == "Delivered anyway.")
    assert answer["id"] != interaction.original_id
    assert answer["message_reference"]["message_id"] == interaction.original_id


async def test_replying_to_a_slash_answer_continues_that_conversation(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stack.xai.queue_reply(ScriptedReply(text="Mercury is closest to the Sun."))
    interaction = await fake.slash("ask", {"prompt": "which planet is closest to the sun?"}, **_in(stack))
    await fake.wait_until(
        lambda: bool(interaction.original_id) and _original(stack)["content"].endswith("Sun.")
    )
    await stack.idle()

    stack.xai.queue_reply(ScriptedReply(text="About 58 million km."))
    await fake.user_message(world.general, world.alice, "how far is it?", reply_to=interaction.original_id)
    await fake.wait_until(
        lambda: any(m["content"] == "About 58 million km." for m in fake.bot_messages(world.general))
    )
    history = "\n".join(str(m["content"]) for m in stack.xai.chat_requests()[-1].json["messages"])
    assert "closest to the sun?" in history and "Mercury is closest" in history


async def test_global_commands_are_compared_with_discords_defaults(stack_factory: Callable[..., Any]) -> None:
    stack: Stack = await stack_factory(discord_guild_ids="")
    fake = stack.fake
    assert stack.adapter.synced == ["global"] and fake.commands["global"][0]["contexts"] == [0, 1]
    for command in fake.commands["global"]:  # as Discord may answer for them: null or left out
        command["contexts"] = None
        del command["dm_permission"], command["integration_types"]

    again = await stack.new_adapter(discord_guild_ids="")
    await again.start()
    assert again.synced == [] and len(fake.requests_to("PUT /applications")) == 1


async def test_guild_commands_without_global_only_fields_are_up_to_date(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    stored = fake.commands[world.guild]
    assert not {"contexts", "integration_types", "dm_permission"} & {k for c in stored for k in c}
    sent = fake.requests_to("PUT /applications")[0].json
    assert sent[0]["contexts"] == [0, 1]  # discord.py sends them anyway; Discord drops them for guilds

    again = await stack.new_adapter()
    await again.start()
    assert again.synced == [] and len(fake.requests_to("PUT /applications")) == 1


def _option(command: dict[str, Any], name: str) -> dict[str, Any]:
    option: dict[str, Any] = next(o for o in command["options"] if o["name"] == name)
    return option


async def test_a_zero_minimum_takes_part_in_the_sync_decision(stack: Stack) -> None:
    fake, world = stack.fake, stack.world
    quota = next(c for c in fake.commands[world.guild] if c["name"] == "quota")
    assert _option(quota, "daily_usd")["min_value"] == 0
    del _option(quota, "daily_usd")["min_value"]  # an older deploy allowed negative limits

    changed = await stack.new_adapter()
    await changed.start()
    assert changed.synced == [world.guild] and len(fake.requests_to("PUT /applications")) == 2
    quota = next(c for c in fake.commands[world.guild] if c["name"] == "quota")
    assert _option(quota, "daily_usd")["min_value"] == 0


def _admins_only(adapter: Any) -> None:
    command = adapter.client.tree.get_command("quota")
    command.default_permissions = discord.Permissions(manage_guild=True)


async def test_default_member_permissions_compare_as_discords_string(
    stack_factory: Callable[..., Any],
) -> None:
    stack: Stack = await stack_factory(start=False)
    fake, world = stack.fake, stack.world
    _admins_only(stack.adapter)
    await stack.adapter.start()
    sent = next(c for c in fake.requests_to("PUT /applications")[0].json if c["name"] == "quota")
    stored = next(c for c in fake.commands[world.guild] if c["name"] == "quota")
    assert sent["default_member_permissions"] == 32 and stored["default_member_permissions"] == "32"

    again = await stack.new_adapter()
    _admins_only(again)
    await again.start()
    assert again.synced == [] and len(fake.requests_to("PUT /applications")) == 1


async def test_global_commands_beside_guild_commands_are_warned_about_not_deleted(
    stack_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    stack: Stack = await stack_factory(start=False)
    fake = stack.fake
    leftover = {"id": fake.snowflake(), "application_id": fake.application_id, "type": 1, "name": "ask"}
    fake.commands["global"] = [{**leftover, "description": "Ask Grok", "options": []}]

    with caplog.at_level(logging.WARNING, logger="adapters.discord"):
        await stack.adapter.start()

    [warning] = [r.getMessage() for r in caplog.records if "global slash commands" in r.getMessage()]
    assert "1 global slash commands (/ask)" in warning and "second time" in warning
    assert f"PUT {fake.rest_url}/applications/{fake.application_id}/commands with the body []" in warning
    assert [c["name"] for c in fake.commands["global"]] == ["ask"]  # left alone
    assert not fake.requests_to("PUT /applications/{app_id}/commands")


async def test_a_failure_note_after_an_ephemeral_answer_stays_ephemeral(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = stack.fake
    # A private, streamed answer (no command streams privately yet).
    monkeypatch.setattr("adapters.discord.commands.PRIVATE_COMMANDS", frozenset({"ask"}))
    text = "".join(f"word{i:04} " for i in range(220))  # 2,200 characters, cut at 1,980
    stack.xai.queue_reply(ScriptedReply(text=text, chunk_chars=10, fault=Fault("cut", after_chunks=198)))

    interaction = await fake.slash("ask", {"prompt": "a long story please"}, **_in(stack))
    await fake.wait_until(lambda: len(interaction.followups) == 1)
    await stack.idle()

    original = _original(stack)
    assert original["flags"] & FLAG_EPHEMERAL and text.startswith(original["content"])
    note = fake.messages[interaction.followups[0]]
    assert note["content"].startswith("⚠️") and note["flags"] & FLAG_EPHEMERAL
    assert not fake.bot_messages(stack.world.general)  # nobody else sees any of it
