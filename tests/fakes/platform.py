"""A recording Platform for engine and job tests: every message, edit and upload, with timestamps.

It satisfies bot.platform.Platform structurally. It can inject a 429 on the next edits and
simulates a per-scope rate limit so that tests can assert edits stayed inside the budget. With
`native=True` its replies show activities and sources themselves (the seam's ShowsActivities and
ShowsSources), as a platform with task cards and a sources element would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.errors import PlatformRateLimited
from bot.platform import Activity, Attachment, Capabilities, ChannelMessage, Image, Place, SourceLink

DEFAULT_CAPABILITIES = Capabilities(
    max_message_length=2000,
    edit_interval=0.05,
    native_streaming=False,
    max_upload_bytes=10 * 1024 * 1024,
    scope_edits_per_minute=6000,
    scope_burst=5,
)


@dataclass
class Event:
    kind: str  # post | status | update | finish | fail | images | private | direct | activity | sources
    message_id: str
    text: str
    at: float  # time.perf_counter()
    images: tuple[Image, ...] = ()


@dataclass
class FakeMessage:
    id: str
    place: Place
    reply_to: str
    text: str = ""
    status: str = ""
    final: bool = False
    failed: str = ""
    images: tuple[Image, ...] = ()
    edits: int = 0
    private_to: str = ""
    activities: list[Activity] = field(default_factory=list)  # native replies only
    sources: tuple[SourceLink, ...] = ()  # native replies only
    posted: bool = True  # False until its first call where the platform posts on it (Discord)


class FakeReply:
    def __init__(self, platform: FakePlatform, message: FakeMessage) -> None:
        self._platform = platform
        self._message = message

    @property
    def message_id(self) -> str:
        return self._message.id if self._message.posted else ""

    async def status(self, text: str) -> None:
        self._message.status = text
        self._platform.record("status", self._message, text)

    async def update(self, text: str) -> None:
        self._platform.check_budget(self._message)
        if self._message.final:
            raise AssertionError("update after finish")
        if not text.startswith(self._message.text):
            raise AssertionError("update texts must only grow")
        self._message.text = text
        self._message.edits += 1
        self._message.posted = True
        self._platform.record("update", self._message, text)

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        self._platform.check_budget(self._message)
        self._message.text = text
        self._message.final = True
        self._message.images = tuple(images)
        self._message.edits += 1
        self._message.posted = True
        self._platform.record("finish", self._message, text, images=tuple(images))

    async def fail(self, message: str) -> None:
        self._message.failed = message
        self._message.final = True
        self._platform.record("fail", self._message, message)


class NativeReply(FakeReply):
    """A reply that shows Grok's activities and an answer's sources itself."""

    async def activity(self, activity: Activity) -> bool:
        self._message.activities.append(activity)
        self._platform.record("activity", self._message, f"{activity.status}: {activity.title}")
        return True

    async def sources(self, sources: Sequence[SourceLink]) -> None:
        self._message.sources = tuple(sources)
        self._platform.record("sources", self._message, "\n".join(s.url for s in sources))


@dataclass
class FakePlatform:
    """Records what the engine did. `messages` in posting order; `events` in time order."""

    name: str = "fake"
    capabilities: Capabilities = DEFAULT_CAPABILITIES
    messages: list[FakeMessage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    history: list[ChannelMessage] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # attachment url -> bytes
    fail_edits: int = 0  # the next N edits raise PlatformRateLimited
    retry_after: float = 0.05
    rate_limited: int = 0  # 429s answered (injected or by the simulated scope budget)
    enforce_scope_budget: bool = False
    history_page_size: int = 100
    history_calls: int = 0
    native: bool = False  # replies show activities and sources themselves (NativeReply)
    # A reply's message exists only from its first update or finish (Discord posts it then): until
    # then its message_id is "", and `edits` counts every call made on it, the post included.
    posts_on_first_call: bool = False
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _scope_edits: dict[str, list[float]] = field(default_factory=dict)
    _watchers: list[asyncio.Event] = field(default_factory=list)  # woken by each recorded event

    def rate_scope(self, place: Place) -> str:
        return f"{place.platform}:{place.workspace}"

    async def start_reply(self, place: Place, *, reply_to: str = "") -> FakeReply:
        message = FakeMessage(id=f"m{next(self._ids)}", place=place, reply_to=reply_to)
        message.posted = not self.posts_on_first_call
        self.messages.append(message)
        self.record("post", message, "")
        return NativeReply(self, message) if self.native else FakeReply(self, message)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        message = FakeMessage(id=f"m{next(self._ids)}", place=place, reply_to="", text=text, final=True)
        message.private_to = private_to
        self.messages.append(message)
        self.record("private" if private_to else "post", message, text)
        return message.id

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        message = FakeMessage(
            id=f"m{next(self._ids)}",
            place=place,
            reply_to="",
            text=text,
            final=True,
            images=tuple(images),
        )
        self.messages.append(message)
        self.record("images", message, text, images=tuple(images))
        return message.id

    async def direct_message(self, user_id: str, text: str) -> str:
        place = Place(self.name, "dm", f"dm:{user_id}")
        message = FakeMessage(id=f"m{next(self._ids)}", place=place, reply_to="", text=text, final=True)
        message.private_to = user_id
        self.messages.append(message)
        self.record("direct", message, text)
        return message.id

    async def download(self, attachment: Attachment) -> bytes:
        if attachment.data is not None:
            return attachment.data
        return self.files[attachment.url]

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        selected = [m for m in self.history if since <= m.sent_at < until]
        self.history_calls += max(1, -(-len(selected) // self.history_page_size))
        return selected[:limit]

    # -- recording and assertions -------------------------------------------------------------

    def record(self, kind: str, message: FakeMessage, text: str, *, images: tuple[Image, ...] = ()) -> None:
        self.events.append(Event(kind, message.id, text, time.perf_counter(), images))
        for watcher in self._watchers:
            watcher.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait, without a timer, until `condition()` holds; it is checked after each recorded event."""
        while not condition():
            watcher = asyncio.Event()
            self._watchers.append(watcher)
            try:
                await watcher.wait()
            finally:
                self._watchers.remove(watcher)

    def check_budget(self, message: FakeMessage) -> None:
        if self.fail_edits > 0:
            self.fail_edits -= 1
            self.rate_limited += 1
            raise PlatformRateLimited("injected 429", retry_after=self.retry_after)
        if not self.enforce_scope_budget:
            return
        # In any one-second window a token bucket allows at most rate + burst edits: more is a 429.
        scope = self.rate_scope(message.place)
        now = time.monotonic()
        window = [t for t in self._scope_edits.get(scope, []) if now - t < 1.0]
        caps = self.capabilities
        if len(window) >= caps.scope_edits_per_minute / 60 + caps.scope_burst:
            self.rate_limited += 1
            raise PlatformRateLimited("scope budget exceeded", retry_after=1.0)
        window.append(now)
        self._scope_edits[scope] = window

    def visible_text(self, *, place: Place | None = None) -> str:
        """Every non-private bot message's text, joined in order (what users would read)."""
        return "".join(
            m.text for m in self.messages if not m.private_to and (place is None or m.place == place)
        )

    def edits_of(self, message_id: str) -> list[Event]:
        return [e for e in self.events if e.message_id == message_id and e.kind in {"update", "finish"}]

    @property
    def last(self) -> FakeMessage:
        return self.messages[-1]
