"""Place settings as admins change them (channel over workspace, field by field, seen at once by
the process that stored them) and an answer's sources kept with its turn, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import store
from bot.db import Sessions
from bot.grok import Source
from bot.platform import Place
from bot.store import conversations as conversations_mod

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PLACE = Place("slack", "T1", "C1", "1700000000.000100")


async def test_a_change_is_seen_at_once_and_the_channel_wins_field_by_field(sessions: Sessions) -> None:
    conversations = store.Conversations(sessions, clock=lambda: NOW, monotonic=lambda: 0.0)  # no expiry
    assert (await conversations.turn_context(PLACE)).settings == store.PlaceSettings()  # now cached
    await conversations.change_settings(
        PLACE, {"tools": "web", "x_handles": "xai"}, whole_workspace=True, by="U0"
    )
    await conversations.change_settings(PLACE, {"tools": "none"}, whole_workspace=False, by="U0")
    seen = (await conversations.turn_context(PLACE)).settings
    assert (seen.tools, seen.x_handles) == ("none", "xai")
    layers = await conversations.setting_layers(PLACE)
    assert (
        layers.channel.tools == "none"
        and layers.workspace.tools == "web"
        and layers.channel.x_handles is None
    )
    await conversations.change_settings(PLACE, {"tools": None}, whole_workspace=False, by="U0")  # unset here
    assert (await conversations.turn_context(PLACE)).settings.tools == "web"
    other = Place("slack", "T1", "C2")
    assert (await conversations.turn_context(other)).settings.tools == "web"  # the workspace's


async def test_an_answers_sources_are_kept_with_its_turn(sessions: Sessions) -> None:
    conversation = await conversations_mod.conversation_for(sessions, PLACE, now=NOW)
    sources = (Source("https://x.ai/news", "xAI news"), Source("https://x.com/xai/status/1"))
    answer = store.HistoryMessage(role="assistant", text="It shipped.", sources=sources)
    await store.add_turns(
        sessions, conversation.id, [answer, store.HistoryMessage(role="user", text="ok")], now=NOW
    )
    kept = await conversations_mod.recent_turns(sessions, conversation.id)
    assert [turn.sources for turn in kept] == [sources, ()]
