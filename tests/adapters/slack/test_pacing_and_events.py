"""Unit tests: the per-method pacer and the event rules (noise, places, text, attachments)."""

from __future__ import annotations

from typing import Any

from adapters.slack.events import clean_text, incoming_from_event, is_noise, is_ts
from adapters.slack.pacing import SPAN_S, Limit, Pacer
from bot.platform import Author, Place


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_a_tier_allows_its_calls_per_minute_then_waits() -> None:
    time = FakeTime()
    pacer = Pacer(limits={"chat.update": Limit(3)}, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        await pacer.acquire("chat.update", "T1")
    assert time.slept == []
    await pacer.acquire("chat.update", "T1")
    assert time.slept == [SPAN_S]
    await pacer.acquire("chat.update", "T2")  # another workspace has its own budget
    await pacer.acquire("other.method", "T1")  # unknown methods are not paced
    assert len(time.slept) == 1


async def test_posting_is_paced_per_channel_with_a_short_burst() -> None:
    time = FakeTime()
    pacer = Pacer(limits={"chat.postMessage": Limit(100, 1.0, 2)}, clock=time.clock, sleep=time.sleep)
    for _ in range(2):
        await pacer.acquire("chat.postMessage", "T1", "C1")
    await pacer.acquire("chat.postMessage", "T1", "C2")
    assert time.slept == []
    await pacer.acquire("chat.postMessage", "T1", "C1")
    assert time.slept == [1.0]


async def test_interim_updates_leave_room_for_the_finals_of_answers_in_progress() -> None:
    """Issue 15, part 3: interim chat.update edits spend only what the finals will not need."""
    time = FakeTime()
    pacer = Pacer(limits={"chat.update": Limit(5)}, clock=time.clock, sleep=time.sleep)
    answers = [object(), object(), object()]  # posted answers, each to be finished by a chat.update
    for answer in answers:
        pacer.reserve("chat.update", "T1", answer)
    for _ in range(2):  # 2 interim edits + 3 finals fill the window
        assert pacer.room_beyond_finals("chat.update", "T1")
        await pacer.acquire("chat.update", "T1")
    assert not pacer.room_beyond_finals("chat.update", "T1")  # a third would take a final's slot
    assert pacer.room_beyond_finals("chat.update", "T2")  # another workspace keeps its own
    for answer in answers:  # every final still goes at once
        await pacer.acquire("chat.update", "T1")
        pacer.release("chat.update", "T1", answer)
    assert time.slept == []


async def test_a_share_of_the_limits_beside_other_instances() -> None:
    """Issue 15, part 2: beside another instance, each paces at half of every limit."""
    time = FakeTime()
    limits = {"chat.update": Limit(4), "chat.postMessage": Limit(100, 1.0, 2)}
    pacer = Pacer(limits=limits, clock=time.clock, sleep=time.sleep)
    await pacer.acquire("chat.update", "T1")  # a gate made before the share changed follows it too
    pacer.set_share(0.5)
    assert pacer.headroom("chat.update", "T1") == 1
    await pacer.acquire("chat.update", "T1")
    await pacer.acquire("chat.postMessage", "T1", "C1")  # a burst of 1 per channel
    assert time.slept == []
    await pacer.acquire("chat.postMessage", "T1", "C1")  # at half a call per second
    assert time.slept == [2.0]
    await pacer.acquire("chat.update", "T1")  # 2 of 4 a minute: the window is full
    assert time.slept[-1] > 55
    pacer.set_share(1.0)
    assert pacer.headroom("chat.update", "T1") == 3


async def test_penalties_try_acquire_and_would_wait() -> None:
    time = FakeTime()
    pacer = Pacer(limits={"chat.stopStream": Limit(1)}, clock=time.clock, sleep=time.sleep)
    assert not pacer.would_wait("chat.stopStream", "T1")
    assert pacer.try_acquire("chat.stopStream", "T1")
    assert pacer.would_wait("chat.stopStream", "T1")
    assert not pacer.try_acquire("chat.stopStream", "T1")
    time.now += SPAN_S
    pacer.penalize("chat.stopStream", "T1", "", 5.0)
    assert not pacer.try_acquire("chat.stopStream", "T1")
    await pacer.acquire("chat.stopStream", "T1")
    assert time.slept == [5.0]


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": "Ev1",
        "event": event,
        "authorizations": [{"user_id": "UBOT", "is_bot": True}],
    }


def test_noise() -> None:
    thread_reply = {"type": "message", "user": "U1", "channel": "C1", "channel_type": "channel", "ts": "2.0"}
    assert not is_noise(envelope({**thread_reply, "thread_ts": "1.0", "text": "hi"}))
    assert is_noise(envelope({**thread_reply, "text": "top-level chatter"}))
    assert is_noise(
        envelope({**thread_reply, "thread_ts": "1.0", "text": "<@UBOT> hi"})
    )  # app_mention has it
    assert is_noise(envelope({**thread_reply, "thread_ts": "1.0", "text": "<@UBOT|grok> hi"}))
    assert not is_noise(envelope({**thread_reply, "channel_type": "im", "text": "<@UBOT> hi"}))
    assert is_noise(envelope({**thread_reply, "thread_ts": "1.0", "bot_id": "B1"}))
    assert is_noise(envelope({"type": "message", "subtype": "message_changed", "channel": "C1"}))
    assert is_noise(envelope({**thread_reply, "thread_ts": "1.0", "subtype": "channel_join"}))
    assert not is_noise(envelope({**thread_reply, "thread_ts": "1.0", "subtype": "file_share"}))
    assert not is_noise(envelope({"type": "app_mention", "user": "U1", "text": "<@UBOT> hi"}))
    assert not is_noise(envelope({"type": "app_home_opened", "user": "U1"}))
    assert not is_noise({"type": "url_verification", "challenge": "x"})


def test_incoming_from_events() -> None:
    author = Author("U1", "ana")
    mention = {
        "type": "app_mention", "user": "U1", "channel": "C1", "ts": "5.5", "team": "T1",
        "text": "<@UBOT> is 1 &lt; 2 &amp;&amp; 3 &gt; 2?",
        "files": [
            {"name": "a.png", "mimetype": "image/png", "size": 12, "url_private": "https://files.slack.com/a"},
            {"id": "F2", "mode": "tombstone"},
        ],
    }  # fmt: skip
    incoming = incoming_from_event(envelope(mention), mention, author=author, bot_user_id="UBOT")
    assert incoming.place == Place("slack", "T1", "C1", "5.5")  # answered in the message's own thread
    assert incoming.text == "is 1 < 2 && 3 > 2?"
    assert incoming.addressed and incoming.event_id == "Ev1" and incoming.message_id == "5.5"
    assert [(a.filename, a.content_type, a.size, a.url) for a in incoming.attachments] == [
        ("a.png", "image/png", 12, "https://files.slack.com/a"),
        ("F2", None, 0, ""),  # a deleted file has no URL: the user is told it cannot be read
    ]
    reply = {
        "type": "message",
        "user": "U1",
        "channel": "C1",
        "ts": "6.0",
        "thread_ts": "5.5",
        "text": "more",
    }
    follow_up = incoming_from_event(
        envelope(reply), {**reply, "channel_type": "channel"}, author=author, bot_user_id="UBOT"
    )
    assert follow_up.place.thread == "5.5" and not follow_up.addressed and follow_up.reply_to == "5.5"
    dm = incoming_from_event(
        envelope(reply), {**reply, "channel_type": "im"}, author=author, bot_user_id="UBOT"
    )
    assert dm.addressed


def test_text_and_ts_helpers() -> None:
    assert clean_text("<@UBOT|grok> hello <@U2>", "UBOT") == "hello <@U2>"
    assert is_ts("1712345678.000100") and not is_ts("user:U1") and not is_ts("")
