"""SlackPlatform: the seam's Platform for Slack, over slack-sdk's AsyncWebClient.

Every Web API call goes through SlackApi (paced at Slack's limits, refusals typed). It owns the state
Slack needs and the seam does not carry: where native streams are offered and which are open
(`Streams`), who is answered in which thread (`Recipients`) and people's names (`People`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import SlackApi
from adapters.slack.events import FILE_INFO, is_ts
from adapters.slack.messages import TEXT_CHARS, SlackMessages
from adapters.slack.mrkdwn import markdown_to_mrkdwn, unescape
from adapters.slack.parts import IN_PROGRESS, Parts
from adapters.slack.people import People, Recipients
from adapters.slack.refusals import SlackRefused, StreamGone
from adapters.slack.reply import SlackReply
from adapters.slack.streams import Streams
from adapters.slack.urls import Relay, SlackUrls
from bot.errors import PlatformError
from bot.platform import Attachment, Author, Capabilities, ChannelMessage, Image, Incoming, OpenMessage, Place
from bot.streaming import split_message

log = logging.getLogger(__name__)

MARKDOWN_CHARS = 11_000  # one message's markdown_text / markdown block (Slack: 12,000)
POSTS = (None, "thread_broadcast", "file_share")  # message subtypes that are people's posts


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
        # A message's first words (chat.startStream, chat.postMessage: limited per channel) do not
        # wait behind other answers' edits, and finals are paced by their own methods' limits in
        # the adapter (chat.stopStream; chat.update, where interim edits leave room for finals), so
        # answers ending together all finish at once when Slack's windows allow it.
        scope_posts_apart=True,
        scope_paces_finals=False,
    )


class SlackPlatform:
    def __init__(
        self,
        *,
        api: SlackApi,
        client: AsyncWebClient,
        token: SecretStr,
        api_url: str = "https://slack.com/api/",
        edit_interval: float | None = None,
        native_streaming: bool = True,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.api = api
        self.client = client
        self.urls = SlackUrls(token=token, api_url=api_url)
        self.messages = SlackMessages(api, client, self.urls)
        self.streams = Streams(api.pacer, offered=native_streaming)
        self.recipients = Recipients()
        self.people = People(api, client)
        self.workspace_url = ""
        self._edit_interval = edit_interval
        self._capabilities = capabilities  # fixed limits instead of Slack's (tests, benchmarks)

    # -- the seam ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "slack"

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is not None:
            return self._capabilities
        return slack_capabilities(
            edit_interval=self._edit_interval, native_streaming=self.streams.offered_everywhere
        )

    def rate_scope(self, place: Place) -> str:
        return place.workspace  # Slack's limits are per method per workspace

    async def start_reply(
        self, place: Place, *, reply_to: str = "", relay: Relay | None = None
    ) -> SlackReply:
        """A new answer in `place`; `relay`: a /grok command's response_url, where the answer goes
        when the bot cannot post in `place` (see CommandPlatform)."""
        thread = place.thread if is_ts(place.thread) else ""
        user, team = self.recipients.of(place.channel, reply_to=reply_to, thread=thread)
        parts = Parts(
            self.messages,
            self.streams,
            self.recipients,
            place,
            thread_ts=thread,
            recipient=user,
            recipient_team=team or place.workspace,
        )
        return SlackReply(self.messages, parts, relay=relay)

    async def close_orphan(self, message: OpenMessage, note: str) -> None:
        """Close an answer a dead process left in progress: its stream stopped with the note
        appended (chat.stopStream); an edited message (or a stream Slack already ended) read back
        and edited without its in-progress marker, the note at its end (chat.update); where it
        cannot be read, the note posted in its thread."""
        place, ts, notice = message.place, message.message_id, f"⚠️ {note}"
        if message.stream:
            try:
                await self.messages.stop_stream(place, message.stream, f"\n\n{notice}")
                return
            except StreamGone:
                log.info("the stream %s had ended; closing its message by an edit", message.stream)
        thread = place.thread if is_ts(place.thread) else ""
        shown = await self._shown_text(place, ts, thread=thread)
        if shown is None:
            await self.messages.post_markdown(place, thread or ts, notice)
            return
        shown = shown.removesuffix(IN_PROGRESS.strip()).rstrip()
        await self.messages.update_markdown(place, ts, f"{shown}\n\n{notice}".strip())

    async def _shown_text(self, place: Place, ts: str, *, thread: str) -> str | None:
        """What message `ts` shows now (its markdown), or None when Slack does not say."""
        window = {"channel": place.channel, "oldest": ts, "latest": ts, "inclusive": True, "limit": 10}
        try:
            if thread:
                reading = partial(self.client.conversations_replies, ts=thread, **window)  # type: ignore[arg-type]
                response = await self.api.call("conversations.replies", reading, team=place.workspace)
            else:
                reading = partial(self.client.conversations_history, **window)  # type: ignore[arg-type]
                response = await self.api.call("conversations.history", reading, team=place.workspace)
        except PlatformError as exc:
            log.info("could not read back message %s: %s", ts, exc)
            return None
        for item in response.get("messages") or ():
            if isinstance(item, dict) and item.get("ts") == ts:
                return _markdown_of(item)
        return None

    async def post_text(
        self, place: Place, text: str, *, private_to: str = "", relay: Relay | None = None
    ) -> str:
        """`text` in messages within Slack's limits; to `private_to` only, as ephemeral messages
        (through the command's `relay` where Slack refuses them); the first message's ts."""
        thread = place.thread if is_ts(place.thread) else ""
        if private_to:
            return await self._post_private(place, thread, text, user=private_to, relay=relay)
        first = ""
        for piece in _pieces(text, MARKDOWN_CHARS):
            ts = await self.messages.post_markdown(place, thread, piece)
            first = first or ts
        return first

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        thread = place.thread if is_ts(place.thread) else ""
        return await self.messages.upload_images(place, thread, images, comment=text)

    async def post_images_privately(
        self, place: Place, images: Sequence[Image], *, text: str, user_id: str, relay: Relay | None = None
    ) -> str:
        """Slack files cannot be ephemeral: `images` with `text` go to the person's direct messages
        with the bot (in `place`'s thread when `place` is those), and in `place` they see `text`
        privately with where the images are (through a command's `relay` where Slack refuses)."""
        direct = await self._direct_channel(user_id)
        if direct == place.channel:
            return await self.post_images(place, images, text=text)
        posted = await self.messages.upload_images(
            Place(self.name, place.workspace, direct), "", images, comment=text
        )
        await self.post_text(place, f"{text}\n\n{self._sent_to(direct)}", private_to=user_id, relay=relay)
        return posted

    async def direct_message(self, user_id: str, text: str) -> str:
        """In the user's direct conversation with the bot (conversations.open), as Markdown."""
        channel = await self._direct_channel(user_id)
        return await self.messages.post_markdown(Place(self.name, "", channel), "", text)

    async def download(self, attachment: Attachment) -> bytes:
        if attachment.data is not None:
            return attachment.data
        return await self.urls.download(attachment)

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        found = await self._history(place, since=since, until=until, limit=limit)
        messages: list[ChannelMessage] = []
        for item in sorted(found, key=lambda m: float(m.get("ts", 0))):
            if since <= _sent_at(item) < until and item.get("subtype") in POSTS:
                messages.append(await self._channel_message(place, item))
        return messages[:limit]

    # -- what Slack needs that the seam does not carry --------------------------------------------

    async def with_files(self, incoming: Incoming) -> Incoming:
        """`incoming` with the files its event only named (Slack Connect) read from files.info, so
        the engine sees their real names, types and sizes like any other attachment's."""
        if not any(a.url.startswith(FILE_INFO) for a in incoming.attachments):
            return incoming
        files = [await self._file_info(a) if a.url.startswith(FILE_INFO) else a for a in incoming.attachments]
        return replace(incoming, attachments=tuple(files))

    # -- internals -----------------------------------------------------------------------------

    async def _post_private(
        self, place: Place, thread: str, text: str, *, user: str, relay: Relay | None
    ) -> str:
        first = ""
        for piece in _pieces(markdown_to_mrkdwn(text), TEXT_CHARS):
            try:
                ts = await self.messages.post_ephemeral(place, thread, user, piece)
                first = first or ts
            except SlackRefused as exc:
                # Ephemeral messages need the bot in the channel; a command's response_url does not.
                if relay is None or not await relay.ephemeral(piece):
                    raise
                log.info("ephemeral via response_url after %s", exc.error)
        return first

    async def _history(
        self, place: Place, *, since: datetime, until: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """conversations.history of [since, until], page by page (Slack's pages may be short)."""
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
        return found

    async def _channel_message(self, place: Place, item: dict[str, Any]) -> ChannelMessage:
        user = str(item.get("user") or item.get("bot_id") or "")
        author = (
            await self.people.author(place.workspace, user)
            if item.get("user")
            else Author(user, user, is_bot=True)
        )
        return ChannelMessage(
            id=str(item["ts"]),
            author=author,
            text=unescape(str(item.get("text") or "")),
            sent_at=_sent_at(item),
            thread=str(item.get("thread_ts") or ""),
            link=self._permalink(place.channel, str(item["ts"])),
        )

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

    async def _direct_channel(self, user_id: str) -> str:
        """The id of the user's direct conversation with the bot (conversations.open)."""
        opened = await self.api.call(
            "conversations.open", partial(self.client.conversations_open, users=user_id), team=""
        )
        return str(opened["channel"]["id"])

    def _sent_to(self, direct: str) -> str:
        """Where files sent to a person's direct messages are, linked when the workspace is known."""
        where = "our direct messages"
        if self.workspace_url:
            where = f"[{where}]({self.workspace_url.rstrip('/')}/archives/{direct})"
        return f"🖼️ The picture is in {where}."

    def _permalink(self, channel: str, ts: str) -> str:
        if not self.workspace_url:
            return ""
        return f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def _markdown_of(item: dict[str, Any]) -> str:
    """A message's text as its markdown blocks hold it, else its `text`."""
    blocks = [b for b in item.get("blocks") or () if isinstance(b, dict) and b.get("type") == "markdown"]
    if blocks:
        return "".join(str(block.get("text") or "") for block in blocks)
    return str(item.get("text") or "")


def _sent_at(item: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(float(item.get("ts", 0)), UTC)


def _pieces(text: str, limit: int) -> list[str]:
    """`text` in messages of at most `limit` characters, split as the engine splits answers (at
    paragraph, line or word ends, code blocks closed and reopened); blank pieces dropped."""
    return [p for p in split_message(text, limit) if p.strip()] or [text]
