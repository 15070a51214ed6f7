"""The fake Slack's values: its credentials and ids, Slack's documented limits, request signing, and
the users, channels, files, messages and recorded calls it keeps."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

BOT_TOKEN = "xoxb-1111-fake-bot-token-do-not-log"
APP_TOKEN = "xapp-1-A0GROKAPP-1111-fake-app-token-do-not-log"  # Socket Mode's app-level token
SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"
TEAM_ID = "T0FAKE001"
BOT_USER_ID = "U0GROKBOT"
BOT_ID = "B0GROKBOT"
APP_ID = "A0GROKAPP"

TEXT_LIMIT = 4_000  # msg_too_long beyond this many characters of `text` (observed, not the documented 40k)
MARKDOWN_LIMIT = 12_000  # markdown_text per call, and markdown blocks per message
SECTION_LIMIT = 3_000
MAX_BLOCKS = 50
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
HISTORY_METHODS = frozenset({"conversations.history", "conversations.replies"})
HISTORY_LIMITED_PAGE = 15
METHOD_TIERS = {
    "auth.test": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "chat.startStream": 2,  # and the posting limit per channel
    "chat.appendStream": 4,
    "chat.stopStream": 2,
    "assistant.threads.setStatus": 3,  # "special" and unpublished: modelled as Tier 3
    "assistant.threads.setSuggestedPrompts": 4,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.open": 3,
    "users.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
    "apps.connections.open": 1,  # Tier 1: an app opens a connection once in a while
}
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})  # the rest take the bot token
POSTING_METHODS = ("chat.postMessage", "chat.startStream")
RESPONSE_URL_USES = 5
MAX_SUGGESTED_PROMPTS = 4
POST_RATE_PER_CHANNEL = 1.0  # per second
POST_BURST_PER_CHANNEL = 4
KNOWN_BLOCKS = {
    "section", "markdown", "context", "context_actions", "actions", "divider", "header", "image",
    "rich_text", "file", "input",
}  # fmt: skip


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class FakeUser:
    id: str
    name: str
    display_name: str = ""
    real_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False
    team_id: str = TEAM_ID

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.real_name or self.name,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_bot": self.is_bot,
            "deleted": False,
            "profile": {"display_name": self.display_name, "real_name": self.real_name or self.name},
        }


@dataclass
class FakeChannel:
    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    is_mpim: bool = False  # a group direct message
    is_ext_shared: bool = False  # a Slack Connect channel: events carry file stubs only
    user: str = ""  # the other member of a DM

    @property
    def channel_type(self) -> str:
        if self.is_im or self.is_mpim:
            return "im" if self.is_im else "mpim"
        return "group" if self.is_private else "channel"


@dataclass
class FakeFile:
    id: str
    name: str
    title: str = ""
    mimetype: str = "application/octet-stream"
    data: bytes = b""
    declared_length: int = 0
    alt_txt: str = ""
    uploaded: bool = False
    shared_to: list[tuple[str, str]] = field(default_factory=list)  # (channel, ts)
    user: str = BOT_USER_ID
    mode: str = ""  # "hidden_by_limit" (a free plan's file limits) or "tombstone" (deleted)

    def json(self, base: str) -> dict[str, Any]:
        if self.mode:  # Slack's hidden and deleted files carry no URLs
            return {"id": self.id, "mode": self.mode, "name": self.name, "user": self.user}
        return {
            "id": self.id,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.name.rsplit(".", 1)[-1],
            "size": len(self.data),
            "user": self.user,
            "url_private": f"{base}files-pri/{TEAM_ID}-{self.id}/{self.name}",
            "url_private_download": f"{base}files-pri/{TEAM_ID}-{self.id}/download/{self.name}",
        }


@dataclass
class FakeMessage:
    """One message. `content` is what a reader sees: markdown where it was given, else text."""

    ts: str
    channel: str
    user: str
    text: str = ""
    markdown: str | None = None  # markdown_text, markdown blocks, or the streamed text
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str = ""
    bot_id: str = ""
    files: list[str] = field(default_factory=list)
    streaming: bool = False
    stream_started: float = 0.0
    stopped_by_user: bool = False  # the person pressed the stream's stop button
    recipient: str = ""
    edits: int = 0
    versions: list[tuple[float, str]] = field(default_factory=list)  # (perf_counter, content)
    subtype: str = ""
    tasks: list[dict[str, Any]] = field(default_factory=list)  # task_update chunks, in order

    @property
    def content(self) -> str:
        return self.markdown if self.markdown is not None else self.text

    def record(self) -> None:
        self.versions.append((time.perf_counter(), self.content))

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.content}
        if self.blocks:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.subtype:
            out["subtype"] = self.subtype
        return out


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    status: int
    error: str = ""
    at: float = 0.0
    body: str = ""  # how the arguments came: "" (query string only), "json" or "form"


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(error)
