"""THE SEAM between the core and the platforms: neutral values and the Platform/Reply protocols.

Adapters turn platform events into `Incoming` values and implement `Platform` and `Reply`; the
engine never sees an SDK object. Ids are strings (Discord snowflakes become strings at the edge).
Text crossing the seam is standard Markdown; adapters render it natively.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar, runtime_checkable


@dataclass(frozen=True)
class Place:
    """A conversation address. `thread` is "" for the channel itself."""

    platform: str  # "discord" | "slack" | "console"
    workspace: str  # guild id, team id, "dm" for Discord DMs, "local" for the console
    channel: str
    thread: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"

    def in_thread(self, thread: str) -> Place:
        return Place(self.platform, self.workspace, self.channel, thread)


@dataclass(frozen=True)
class Author:
    id: str
    name: str
    is_admin: bool = False  # granted by the platform (e.g. Discord Manage Server); settings add more
    is_bot: bool = False


@dataclass(frozen=True)
class Attachment:
    """A file on a user's message. `data` when the adapter already has the bytes, else `url`."""

    filename: str
    content_type: str | None
    size: int
    url: str = ""
    data: bytes | None = None


@dataclass(frozen=True)
class Command:
    name: str  # a command of bot.command_registry.REGISTRY
    options: Mapping[str, str] = field(default_factory=dict)
    text: str = ""  # the free text: the prompt, or a subcommand's arguments
    # What is wrong with a command typed as text (parse_command_text); the engine tells the user.
    error: str = ""


@dataclass(frozen=True)
class Incoming:
    """One thing a user said or did, addressed to the bot or in one of its conversations."""

    place: Place
    author: Author
    text: str = ""
    command: Command | None = None
    attachments: tuple[Attachment, ...] = ()
    message_id: str = ""  # the user's message, when there is one
    reply_to: str = ""  # the message this one replies to (a bot message continues its conversation)
    event_id: str = ""  # the platform's delivery id (dedup, idempotent charging)
    addressed: bool = True  # mentioned, a DM, or a command; False: answer only inside a conversation
    # The platform may deliver this more than once (Slack's retries, two gateway sessions on one
    # token): the engine answers only the first delivery of `event_id`, across instances.
    deduplicate: bool = False


@dataclass(frozen=True)
class Feedback:
    """A person's reaction to one of the bot's answers (Slack's feedback buttons)."""

    place: Place
    message_id: str
    user_id: str
    value: str  # "good" | "bad", as the platform's buttons send it


@dataclass(frozen=True)
class Image:
    data: bytes
    mime_type: str
    filename: str
    caption: str = ""  # shown with the image (e.g. the revised prompt); also its alt text


@dataclass(frozen=True)
class ChannelMessage:
    """A message read back from a channel (for digests)."""

    id: str
    author: Author
    text: str
    sent_at: datetime
    thread: str = ""
    link: str = ""


@dataclass(frozen=True)
class Capabilities:
    max_message_length: int  # characters of one message
    edit_interval: float  # least seconds between two edits of one message
    native_streaming: bool  # appends instead of whole-text edits
    max_upload_bytes: int
    scope_edits_per_minute: float  # edits shared by every stream in one rate-limit scope
    scope_burst: int = 5
    # Whether the platform limits new messages apart from edits (Discord: sending and editing are
    # separate route buckets): a message's first call then draws from a budget of its own.
    scope_posts_apart: bool = False
    # Whether final edits draw from the scope's budget; False where the adapter paces finals by the
    # limits of the methods they use (Slack: chat.stopStream, chat.update with room kept for finals).
    scope_paces_finals: bool = True
    # Whether the platform counts `scope_burst` calls per fixed window (Discord's buckets: 5 per
    # 5 s): the budget then lets no span that long hold more, so that calls wait (and are ordered)
    # in the engine rather than in the platform's client.
    scope_fixed_windows: bool = False
    # post_images reaches only those who would read post_text(..., private_to=...) (Discord's
    # ephemeral command answers, the terminal); Slack has no private files.
    private_files: bool = False


@runtime_checkable
class Reply(Protocol):
    """One message of the bot's, being streamed into. Texts passed to `update` only ever grow."""

    @property
    def message_id(self) -> str:
        """The platform id of the message once it exists, else ""."""
        ...

    async def status(self, text: str) -> None:
        """Show a transient status (waiting, thinking for N s) until the first `update`."""
        ...

    async def update(self, text: str) -> None:
        """Show `text` as the message so far, marked as still in progress."""
        ...

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        """Show `text` as final, without the in-progress marker, with `images` attached."""
        ...

    async def fail(self, message: str) -> None:
        """Keep what was shown, drop the in-progress marker, add `message` saying what happened."""
        ...


@dataclass(frozen=True)
class OpenMessage:
    """The message an answer is being written into, as another process needs it to close the answer
    should this one die: where it is (`place`), its id, and the id of the native stream writing it
    ("" when it is written by edits)."""

    place: Place
    message_id: str
    stream: str = ""


@runtime_checkable
class TellsOpenMessage(Protocol):
    """A Reply that says which message it writes now and through which native stream (Slack's
    replies span several messages, some streamed). Without it: `message_id`, edited."""

    def open_message(self) -> tuple[str, str]:
        """(the id of the message being written now or "", its native stream's id or "")."""
        ...


@runtime_checkable
class ClosesOrphans(Protocol):
    """A platform that can close an answer a dead process left in progress (bot.inflight)."""

    async def close_orphan(self, message: OpenMessage, note: str) -> None:
        """Close the answer written into `message` the way a failure closes one: its stream stopped
        or its last edit made, what it shows kept, `note` at its end."""
        ...


@runtime_checkable
class Platform(Protocol):
    """What a chat platform offers the engine. Adapters may wrap one per event (e.g. an interaction)."""

    @property
    def name(self) -> str:
        """The platform's name as used in Place.platform."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """Limits that shape streaming, splitting and uploads."""
        ...

    def rate_scope(self, place: Place) -> str:
        """The key of the rate-limit budget that edits in `place` draw from."""
        ...

    async def start_reply(self, place: Place, *, reply_to: str = "") -> Reply:
        """Begin a new bot message in `place` (answering `reply_to` where the platform links replies)."""
        ...

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        """Post a complete message (only to user `private_to` where possible); return its id."""
        ...

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        """Upload `images` as files with `text`; return the id of the message."""
        ...

    async def direct_message(self, user_id: str, text: str) -> str:
        """Send `text` to user `user_id` alone, in a direct conversation with the bot; its message id."""
        ...

    async def download(self, attachment: Attachment) -> bytes:
        """The bytes of a user's attachment (with the platform's credentials where needed)."""
        ...

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        """Messages of `place`'s channel in [since, until), oldest first, paged within limits."""
        ...


@dataclass(frozen=True)
class SourceLink:
    """A source of an answer: a web page or an X post (its x.com link), titled where known."""

    url: str
    title: str = ""  # "" when unknown: show the URL (or a short form of it) instead


@dataclass(frozen=True)
class Activity:
    """Something Grok does on the way to an answer: one server-side tool call. Sent again with
    the same `id` as it changes (its query becomes known, it ends)."""

    id: str
    kind: str  # "web" | "x" | "code"
    title: str  # what a person reads: "Searching X for “xAI news”", "Running code"
    status: str  # "in_progress" | "complete" | "error"
    sources: tuple[SourceLink, ...] = ()  # what a web search found (complete only)
    detail: str = ""  # the code being run


@runtime_checkable
class ShowsActivities(Protocol):
    """A Reply that may show Grok's activities natively (task cards, a plan). Where it does not
    (or cannot now), the writer shows the latest activity's title as the status line until the
    answer starts."""

    async def activity(self, activity: Activity) -> bool:
        """Show `activity`, new or changed (same `id`); called before and while the text streams.
        False when this reply cannot show it natively (e.g. Slack answering with edits instead of
        a stream): the writer then shows it as the status line."""
        ...


@runtime_checkable
class ShowsSources(Protocol):
    """A Reply that shows an answer's sources natively (a sources element, a context block of
    links). Without it, the sources are written at the end of the answer's text as Markdown."""

    async def sources(self, sources: Sequence[SourceLink]) -> None:
        """The answer's sources, numbered in this order; called just before the final `finish`
        of the answer's last message (again if that is retried, or moves to a new message),
        which should show them with its final text."""
        ...


@runtime_checkable
class KeepsReasoning(Protocol):
    """A Reply that keeps the model's reasoning summary viewable after the answer, collapsed (a
    button, a spoiler). Only summaries reach it: encrypted reasoning is never shown or stored."""

    async def reasoning(self, text: str) -> None:
        """The answer's reasoning summary; called just before the final `finish` of the answer's
        last message (again if that is retried), which should offer it with its final text."""
        ...


P = TypeVar("P", bound=Platform)


class PlatformView(Generic[P]):
    """A platform seen from one event (a Slack command, a Discord message or interaction): a view
    overrides the verbs that event changes, and every other goes to the long-lived platform `base`."""

    def __init__(self, base: P) -> None:
        self.base = base

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def capabilities(self) -> Capabilities:
        return self.base.capabilities

    def rate_scope(self, place: Place) -> str:
        return self.base.rate_scope(place)

    async def start_reply(self, place: Place, *, reply_to: str = "") -> Reply:
        return await self.base.start_reply(place, reply_to=reply_to)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        return await self.base.post_text(place, text, private_to=private_to)

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        return await self.base.post_images(place, images, text=text)

    async def direct_message(self, user_id: str, text: str) -> str:
        return await self.base.direct_message(user_id, text)

    async def download(self, attachment: Attachment) -> bytes:
        return await self.base.download(attachment)

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        return await self.base.channel_history(place, since=since, until=until, limit=limit)


@runtime_checkable
class ShowsReasoning(Protocol):
    """A platform that shows a finished answer's whole reasoning after it (the console)."""

    async def show_reasoning(self, place: Place, text: str) -> None:
        """Show the model's reasoning for the answer just finished in `place`."""
        ...


@runtime_checkable
class PostsImagesPrivately(Protocol):
    """A platform whose files cannot be private where a person asked (`private_files` False) but
    that can give them to that person alone elsewhere (Slack: their direct messages with the bot)."""

    async def post_images_privately(
        self, place: Place, images: Sequence[Image], *, text: str, user_id: str
    ) -> str:
        """`images` with `text` to user `user_id` alone, and `text` privately in `place` saying where
        the images went; the id of the images' message."""
        ...
