"""SlackPlatform: the seam's Platform for Slack, over slack-sdk's AsyncWebClient.

Every call goes through SlackApi (paced at Slack's limits, errors mapped to PlatformError). It also
keeps the small memories Slack needs and the seam does not carry: who is being answered in which
thread (native streams need the recipient), display names, and slash commands' response_urls.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import SlackApi, SlackRefused
from adapters.slack.events import FILE_INFO, is_ts
from adapters.slack.messages import TEXT_CHARS, SlackMessages
from adapters.slack.mrkdwn import markdown_to_mrkdwn, unescape
from adapters.slack.reply import SlackReply
from bot.errors import PlatformError
from bot.platform import Attachment, Author, Capabilities, ChannelMessage, Image, Incoming, Place

log = logging.getLogger(__name__)

MARKDOWN_CHARS = 11_000  # one message's markdown_text / markdown block (Slack: 12,000)
NAME_TTL_S = 3600.0
MEMORY = 10_000
RESPONSE_URL_TTL_S = 29 * 60.0  # Slack accepts up to 5 responses within 30 minutes
MAX_DOWNLOAD = 50 * 1024 * 1024
SLACK_FILE_HOSTS = (".slack.com", ".slack-edge.com", ".slack-files.com")
# The /grok command being answered in this task: (channel, user). Its replies may fall back to the
# command's response_url where the bot cannot post (a DM between two people, a group DM).
ANSWERING_COMMAND: ContextVar[tuple[str, str] | None] = ContextVar("slack_command", default=None)


def slack_capabilities(*, edit_interval: float | None = None, native_streaming: bool = True) -> Capabilities:
    return Capabilities(
        # markdown_text and markdown blocks take 12,000 characters (platforms.md S5); 11,000 leaves
        # room for the in-progress marker and a reopened code fence, and stays under the 11,500 at
        # which other streaming adapters start a new message (S7).
        max_message_length=MARKDOWN_CHARS,
        # At most one edit per second per message (S3, S-Part 3): enough to read as streaming.
        edit_interval=edit_interval or 1.0,
        native_streaming=native_streaming,
        max_upload_bytes=1024 * 1024 * 1024,  # Slack's per-file upload limit
        # Slack limits per method per workspace. Streamed answers edit with chat.appendStream
        # (Tier 4, 100/min); chat.update (Tier 3, 50/min) only serves top-level /grok answers, and
        # the adapter's own pacer holds those to Tier 3 besides. Without native streaming, Tier 3.
        scope_edits_per_minute=100 if native_streaming else 50,
        # Tier 4 allows "generous bursts": 20 answers starting together all show their first words
        # at once (the pacer still holds every method to its window).
        scope_burst=20 if native_streaming else 10,
    )


class SlackPlatform:
    def __init__(
        self,
        *,
        api: SlackApi,
        client: AsyncWebClient,
        token: SecretStr,
        http: aiohttp.ClientSession | None = None,
        api_url: str = "https://slack.com/api/",
        edit_interval: float | None = None,
        native_streaming: bool = True,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.api = api
        self.client = client
        self.http = http
        self.messages = SlackMessages(api, client, native_streaming=native_streaming)
        self._token = token
        self._edit_interval = edit_interval
        self._capabilities = capabilities  # fixed limits instead of Slack's (tests, benchmarks)
        self._api_host = urlsplit(api_url).hostname or ""
        self._recipients: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
        self._names: OrderedDict[str, tuple[float, Author]] = OrderedDict()
        self._response_urls: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()
        self.workspace_url = ""

    # -- the seam ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "slack"

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is not None:
            return self._capabilities
        return slack_capabilities(
            edit_interval=self._edit_interval, native_streaming=self.messages.native_streaming
        )

    def rate_scope(self, place: Place) -> str:
        return place.workspace  # Slack's limits are per method per workspace

    async def start_reply(self, place: Place, *, reply_to: str = "") -> SlackReply:
        thread = place.thread if is_ts(place.thread) else ""
        user, team = self._recipients.get((place.channel, reply_to)) or self._recipients.get(
            (place.channel, "thread:" + thread), ("", "")
        )
        command = ANSWERING_COMMAND.get()
        relay = ""
        if not thread and command is not None and command[0] == place.channel:
            relay = self.response_url(place.channel, command[1])
        return SlackReply(
            self,
            place,
            thread_ts=thread,
            recipient=user,
            recipient_team=team or place.workspace,
            relay_url=relay,
        )

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        thread = place.thread if is_ts(place.thread) else ""
        if not private_to:
            first = ""
            for piece in _pieces(text, MARKDOWN_CHARS):
                ts = await self.messages.post_markdown(place, thread, piece)
                first = first or ts
            return first
        mrkdwn = markdown_to_mrkdwn(text)
        first = ""
        for piece in _pieces(mrkdwn, TEXT_CHARS):
            try:
                response = await self.api.call(
                    "chat.postEphemeral",
                    partial(
                        self.client.chat_postEphemeral,
                        channel=place.channel,
                        user=private_to,
                        text=piece,
                        thread_ts=thread or None,
                    ),
                    team=place.workspace,
                )
                first = first or str(response.get("message_ts") or "")
            except SlackRefused as exc:
                if not await self._respond(place.channel, private_to, piece):
                    raise
                log.info("ephemeral via response_url after %s", exc.error)
        return first

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        thread = place.thread if is_ts(place.thread) else ""
        return await self.messages.upload_images(place, thread, images, comment=text, http=self.http)

    async def direct_message(self, user_id: str, text: str) -> str:
        """In the user's direct conversation with the bot (conversations.open), as Markdown."""
        opened = await self.api.call(
            "conversations.open", partial(self.client.conversations_open, users=user_id), team=""
        )
        channel = str(opened["channel"]["id"])
        return await self.messages.post_markdown(Place(self.name, "", channel), "", text)

    async def download(self, attachment: Attachment) -> bytes:
        if attachment.data is not None:
            return attachment.data
        if self.http is None:
            raise PlatformError("the Slack adapter is not started")
        if not attachment.url:
            raise PlatformError(
                f"I cannot open {attachment.filename}: Slack no longer shows it (it was deleted, or "
                "the workspace's plan hides older files)"
            )
        host = urlsplit(attachment.url).hostname or ""
        if not (host == self._api_host or host.endswith(SLACK_FILE_HOSTS)):
            raise PlatformError(f"{attachment.filename} is not a Slack file")  # the token stays with Slack
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"}
        try:
            async with self.http.get(attachment.url, headers=headers) as response:
                kind = response.headers.get("Content-Type", "")
                if response.status != 200 or kind.startswith("text/html"):
                    # Slack answers a sign-in page when the token may not read the file.
                    raise PlatformError(f"I have no access to {attachment.filename} (is files:read granted?)")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise PlatformError(f"{attachment.filename} is too large")
                    chunks.append(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(f"downloading {attachment.filename} failed: {type(exc).__name__}") from None
        return b"".join(chunks)

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(found) < limit:
            response = await self.api.call(
                "conversations.history",
                partial(
                    self.client.conversations_history,
                    channel=place.channel,
                    oldest=f"{since.timestamp():.6f}",
                    latest=f"{until.timestamp():.6f}",
                    inclusive=True,
                    limit=200,
                    cursor=cursor,
                ),
                team=place.workspace,
            )
            found.extend(m for m in response.get("messages") or () if isinstance(m, dict))
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        messages: list[ChannelMessage] = []
        for item in sorted(found, key=lambda m: float(m.get("ts", 0))):
            sent_at = datetime.fromtimestamp(float(item.get("ts", 0)), UTC)
            if not since <= sent_at < until or item.get("subtype") not in (
                None,
                "thread_broadcast",
                "file_share",
            ):
                continue
            user = str(item.get("user") or item.get("bot_id") or "")
            author = (
                await self.author(place.workspace, user)
                if item.get("user")
                else Author(user, user, is_bot=True)
            )
            messages.append(
                ChannelMessage(
                    id=str(item["ts"]),
                    author=author,
                    text=unescape(str(item.get("text") or "")),
                    sent_at=sent_at,
                    thread=str(item.get("thread_ts") or ""),
                    link=self._permalink(place.channel, str(item["ts"])),
                )
            )
        return messages[:limit]

    # -- what Slack needs that the seam does not carry --------------------------------------------

    def remember_recipient(self, channel: str, ts: str, user: str, team: str) -> None:
        """The user a thread's answers go to (streams outside DMs need the recipient)."""
        if not (channel and ts and user):
            return
        for key in ((channel, ts), (channel, "thread:" + ts)):
            self._recipients[key] = (user, team)
            self._recipients.move_to_end(key)
        while len(self._recipients) > MEMORY:
            self._recipients.popitem(last=False)

    def remember_thread_user(self, channel: str, thread: str, user: str, team: str) -> None:
        key = (channel, "thread:" + thread)
        self._recipients[key] = (user, team)
        self._recipients.move_to_end(key)

    def remember_response_url(self, channel: str, user: str, url: str) -> None:
        self._response_urls[(channel, user)] = (time.monotonic() + RESPONSE_URL_TTL_S, url)
        while len(self._response_urls) > MEMORY:
            self._response_urls.popitem(last=False)

    async def author(self, team: str, user_id: str) -> Author:
        """Author with the display name (users.info, cached for an hour); workspace admins are admins."""
        cached = self._names.get(user_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self.api.call(
                "users.info", lambda: self.client.users_info(user=user_id), team=team
            )
        except PlatformError as exc:
            log.warning("users.info failed for %s: %s", user_id, exc)
            return Author(user_id, user_id)
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
        )
        author = Author(
            id=user_id,
            name=str(name or user_id),
            is_admin=bool(user.get("is_admin") or user.get("is_owner")),
            is_bot=bool(user.get("is_bot")),
        )
        self._names[user_id] = (time.monotonic() + NAME_TTL_S, author)
        while len(self._names) > MEMORY:
            self._names.popitem(last=False)
        return author

    async def with_files(self, incoming: Incoming) -> Incoming:
        """`incoming` with the files its event only named (Slack Connect) read from files.info, so
        the engine sees their real names, types and sizes like any other attachment's."""
        if not any(a.url.startswith(FILE_INFO) for a in incoming.attachments):
            return incoming
        files = [await self._file_info(a) if a.url.startswith(FILE_INFO) else a for a in incoming.attachments]
        return replace(incoming, attachments=tuple(files))

    async def _file_info(self, stub: Attachment) -> Attachment:
        """The file a Slack Connect event only names, from files.info; without a URL (so the
        engine says it cannot be opened) when Slack does not say."""
        file_id = stub.url.removeprefix(FILE_INFO)
        try:
            response = await self.api.call(
                "files.info", partial(self.client.files_info, file=file_id), team=""
            )
        except PlatformError as exc:
            log.warning("files.info failed for %s: %s", file_id, exc)
            return replace(stub, url="")
        file = response.get("file") or {}
        return Attachment(
            filename=str(file.get("name") or file.get("title") or stub.filename),
            content_type=file.get("mimetype"),
            size=int(file.get("size") or 0),
            url=str(file.get("url_private") or ""),
        )

    def response_url(self, channel: str, user: str) -> str:
        """The user's latest /grok response_url in `channel` while Slack still takes it, else ""."""
        entry = self._response_urls.get((channel, user))
        return entry[1] if entry is not None and entry[0] > time.monotonic() else ""

    async def respond(self, url: str, payload: dict[str, Any]) -> bool:
        """POST `payload` to a slash command's response_url (no channel membership needed);
        whether Slack took it."""
        if self.http is None or not url:
            return False
        try:
            async with self.http.post(url, json=payload) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    # -- internals -----------------------------------------------------------------------------

    async def _respond(self, channel: str, user: str, text: str) -> bool:
        """An ephemeral answer through the slash command's response_url, where one is still valid."""
        url = self.response_url(channel, user)
        return bool(url) and await self.respond(url, {"response_type": "ephemeral", "text": text})

    def _permalink(self, channel: str, ts: str) -> str:
        if not self.workspace_url:
            return ""
        return f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def _pieces(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at paragraph, line or word ends."""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        cut = cut + 1 if cut > limit // 3 else limit
        pieces.append(text[:cut])
        text = text[cut:]
    pieces.append(text)
    return [p for p in pieces if p.strip()] or [text]
