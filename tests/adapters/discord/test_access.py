"""The allow-lists and message-splitting helpers, as plain functions."""

from __future__ import annotations

import pytest

from adapters.discord.access import Access, Asker
from adapters.discord.messages import MAX_CONTENT, failure_text, upload_batches
from bot.platform import Image

OPEN = Access(frozenset(), frozenset(), frozenset())
LOCKED = Access(frozenset({"g1"}), frozenset({"c1"}), frozenset({"r1"}))


def allows(access: Access, guild: str | None, channels: list[str], roles: list[str], **who: bool) -> bool:
    asker = Asker(
        guild=guild,
        channels=frozenset(channels),
        roles=frozenset(roles),
        is_admin=who.get("admin", False),
        is_operator=who.get("operator", False),
    )
    return access.allows(asker)


@pytest.mark.parametrize(
    ("guild", "channels", "roles", "who", "expected"),
    [
        ("g1", ["c1"], ["r1"], {}, True),
        ("g1", ["t9", "c1"], ["r1"], {}, True),  # a thread of an allowed channel
        ("g2", ["c1"], ["r1"], {}, False),  # another server
        ("g2", ["c1"], ["r1"], {"admin": True, "operator": True}, False),  # the guild list binds everyone
        ("g1", ["c2"], ["r1"], {"admin": True}, False),  # so does the channel list
        ("g1", ["c1"], [], {}, False),  # missing role
        ("g1", ["c1"], [], {"admin": True}, True),  # Manage Server skips the role list
        (None, ["d1"], [], {}, False),  # DMs are closed while guilds or roles are restricted
        (None, ["d1"], [], {"operator": True}, True),  # except for GROKBOT_ADMINS
    ],
)
def test_allow_lists(
    guild: str | None, channels: list[str], roles: list[str], who: dict[str, bool], expected: bool
) -> None:
    assert allows(LOCKED, guild, channels, roles, **who) is expected


def test_empty_allow_lists_allow_everything() -> None:
    assert allows(OPEN, "g9", ["c9"], [])
    assert allows(OPEN, None, ["d1"], [])
    assert allows(Access(frozenset(), frozenset({"d1"}), frozenset()), None, ["d1"], [])


def test_a_failure_note_is_added_or_posted_separately() -> None:
    assert failure_text("", "Grok is busy.") == ("⚠️ Grok is busy.", "")
    assert failure_text("Half an answer", "⚠️ Cut off.") == ("Half an answer\n\n⚠️ Cut off.", "")
    full = "x" * (MAX_CONTENT - 5)
    assert failure_text(full, "Grok is busy.") == (full, "⚠️ Grok is busy.")


def test_uploads_are_batched_under_discords_request_limits() -> None:
    big = [Image(b"\0" * (9 * 1024 * 1024), "image/png", f"{i}.png") for i in range(4)]
    assert [len(batch) for batch in upload_batches(big)] == [2, 2]
    small = [Image(b"\0", "image/png", f"{i}.png") for i in range(12)]
    assert [len(batch) for batch in upload_batches(small)] == [10, 2]
