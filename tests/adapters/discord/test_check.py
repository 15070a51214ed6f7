"""Discord's part of `grokbot check` against the fake Discord: the bot token (GET /users/@me), the
Message Content intent (GET /applications/@me flags), and Discord out of reach."""

from __future__ import annotations

from typing import Any

from adapters.discord import check_discord
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord


def settings(fake: FakeDiscord, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"discord_token": fake.token, "discord_api_base_url": fake.rest_url}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_a_good_token_names_the_bot_and_the_intent_is_on(discord_fake: FakeDiscord) -> None:
    bot, intent, invite = await check_discord(settings(discord_fake))
    user = discord_fake.bot_user
    assert bot.ok is True and bot.text == f"Discord bot token: bot user {user['username']} ({user['id']})"
    assert intent.ok is True
    assert intent.text == "Discord application grokbot: the Message Content intent is on (unverified app)"
    assert invite.ok is None and f"client_id={discord_fake.application_id}" in invite.text
    assert [r.route for r in discord_fake.requests] == ["GET /users/@me", "GET /applications/@me"]


async def test_a_verified_application_has_the_full_intent_flag(discord_fake: FakeDiscord) -> None:
    discord_fake.verified = True
    _bot, intent, _invite = await check_discord(settings(discord_fake))
    assert intent.ok is True and intent.text.endswith("the Message Content intent is on")


async def test_an_application_without_the_message_content_intent_fails_with_the_fix() -> None:
    async with FakeDiscord(message_content_enabled=False) as fake:
        bot, intent, _invite = await check_discord(settings(fake))
    assert bot.ok is True
    assert intent.ok is False and "the Message Content intent is off" in intent.text
    assert "Privileged Gateway Intents → MESSAGE CONTENT INTENT" in intent.fix


async def test_a_wrong_token_is_rejected_with_the_fix_and_never_shown(discord_fake: FakeDiscord) -> None:
    wrong = "not-the-bot-token.Gx0000.abcdefghijklmnopqrstuvwxyz"
    [line] = await check_discord(settings(discord_fake, discord_token=wrong))
    assert line.ok is False and line.text == "Discord rejected DISCORD_TOKEN (401 Unauthorized)"
    assert "Reset Token" in line.fix
    assert wrong not in line.written and discord_fake.token not in line.written
    assert not discord_fake.requests_to("GET /applications/@me")


async def test_discord_out_of_reach_is_not_reported_as_a_bad_token() -> None:
    nowhere = "http://127.0.0.1:1/api/v10"  # nobody listens there
    values = {"discord_token": "some-token", "discord_api_base_url": nowhere}
    [line] = await check_discord(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    assert line.ok is False and line.text.startswith(f"Discord unreachable at {nowhere} (")
    assert "DISCORD_API_BASE_URL" in line.fix and "rejected" not in line.text


async def test_discord_not_configured_is_a_note() -> None:
    [note] = await check_discord(Settings(_env_file=None))  # type: ignore[call-arg]
    assert note.ok is None and "DISCORD_TOKEN is not set" in note.text
