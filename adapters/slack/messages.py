"""The Web API calls that write the bot's messages: native streams (chat.startStream, appendStream,
stopStream), posts and edits in standard Markdown (markdown_text, markdown blocks), the loading
status, feedback buttons and file uploads. SlackReply composes them; all go through SlackApi.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.models.blocks import (
    Block,
    ContextActionsBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    MarkdownBlock,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import SlackApi
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate
from bot.errors import PlatformError
from bot.platform import Image, Place

log = logging.getLogger(__name__)

FEEDBACK_ACTION = "grok_feedback"
TEXT_CHARS = 3_900  # one message's mrkdwn `text` (msg_too_long at about 4,000)
STREAM_LIFETIME_S = 300.0  # observed: Slack ends a stream about five minutes after its start


class SlackMessages:
    def __init__(self, api: SlackApi, client: AsyncWebClient, *, native_streaming: bool = True) -> None:
        self.api = api
        self.client = client
        self.native_streaming = native_streaming  # switched off for good when Slack refuses streams
        # Streams started and not yet stopped, per workspace: ts -> when it started. A stream the
        # engine leaves behind is forgotten after STREAM_LIFETIME_S (Slack ends it by then too).
        self._open_streams: dict[str, dict[str, float]] = {}

    def may_stream(self, place: Place) -> bool:
        """Whether a new native stream can start now and still be stopped in time: every stream
        starts with one chat.startStream and ends with one chat.stopStream (both Tier 2, 20 a
        minute), so busy workspaces answer with chat.postMessage and chat.update instead."""
        if not self.native_streaming:
            return False
        streams = self._open_streams.setdefault(place.workspace, {})
        now = time.monotonic()
        for ts in [ts for ts, started in streams.items() if now - started > STREAM_LIFETIME_S]:
            del streams[ts]
        pacer = self.api.pacer
        starts = pacer.headroom("chat.startStream", place.workspace)
        stops = pacer.headroom("chat.stopStream", place.workspace)
        return starts > 0 and stops > len(streams)

    def would_wait(self, method: str, place: Place) -> bool:
        return self.api.pacer.would_wait(method, place.workspace, place.channel)

    async def set_status(self, place: Place, thread_ts: str, status: str) -> bool:
        """Slack's "is thinking…" line under the thread; dropped rather than queued when busy."""
        if not self.api.pacer.try_acquire("assistant.threads.setStatus", place.workspace):
            return False
        try:
            await self.api.call(
                "assistant.threads.setStatus",
                partial(
                    self.client.assistant_threads_setStatus,
                    channel_id=place.channel,
                    thread_ts=thread_ts,
                    status=status,
                ),
                team=place.workspace,
                paced=False,
                edit=True,
            )
        except PlatformError as exc:  # a status is cosmetic: never fail an answer for it
            log.debug("setStatus failed: %s", exc)
            return False
        return True

    async def start_stream(
        self, place: Place, thread_ts: str, text: str, *, recipient: str = "", recipient_team: str = ""
    ) -> str:
        response = await self.api.call(
            "chat.startStream",
            lambda: self.client.chat_startStream(
                channel=place.channel,
                thread_ts=thread_ts,
                markdown_text=text or None,
                recipient_user_id=recipient or None,
                recipient_team_id=recipient_team or None,
            ),
            team=place.workspace,
            channel=place.channel,
            edit=True,
        )
        ts = str(response["ts"])
        self._open_streams.setdefault(place.workspace, {})[ts] = time.monotonic()
        return ts

    def stream_closed(self, place: Place, ts: str) -> None:
        """A stream ended (stopped, or gone server-side)."""
        self._open_streams.get(place.workspace, {}).pop(ts, None)

    async def append_stream(self, place: Place, ts: str, text: str) -> None:
        await self.api.call(
            "chat.appendStream",
            lambda: self.client.chat_appendStream(channel=place.channel, ts=ts, markdown_text=text),
            team=place.workspace,
            edit=True,
        )

    async def stop_stream(
        self, place: Place, ts: str, text: str = "", *, blocks: Sequence[Block] = ()
    ) -> None:
        await self.api.call(
            "chat.stopStream",
            lambda: self.client.chat_stopStream(
                channel=place.channel, ts=ts, markdown_text=text or None, blocks=list(blocks) or None
            ),
            team=place.workspace,
            edit=True,
        )

    async def post_markdown(self, place: Place, thread_ts: str, text: str) -> str:
        response = await self.api.call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=place.channel, thread_ts=thread_ts or None, markdown_text=text
            ),
            team=place.workspace,
            channel=place.channel,
            edit=True,
        )
        return str(response["ts"])

    async def update_markdown(self, place: Place, ts: str, text: str) -> None:
        await self.api.call(
            "chat.update",
            lambda: self.client.chat_update(channel=place.channel, ts=ts, markdown_text=text),
            team=place.workspace,
            edit=True,
        )

    async def post_blocks(self, place: Place, thread_ts: str, blocks: Sequence[Block], fallback: str) -> str:
        response = await self.api.call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=place.channel, thread_ts=thread_ts or None, blocks=list(blocks), text=fallback
            ),
            team=place.workspace,
            channel=place.channel,
            edit=True,
        )
        return str(response["ts"])

    async def update_blocks(self, place: Place, ts: str, blocks: Sequence[Block], fallback: str) -> None:
        await self.api.call(
            "chat.update",
            lambda: self.client.chat_update(channel=place.channel, ts=ts, blocks=list(blocks), text=fallback),
            team=place.workspace,
            edit=True,
        )

    async def delete(self, place: Place, ts: str) -> None:
        await self.api.call(
            "chat.delete", lambda: self.client.chat_delete(channel=place.channel, ts=ts), team=place.workspace
        )

    def final_blocks(self, text: str, *, feedback: bool) -> list[Block]:
        """The answer as a markdown block, then (for answers) the feedback buttons."""
        blocks: list[Block] = [MarkdownBlock(text=text)] if text.strip() else []
        if feedback:
            blocks.append(
                ContextActionsBlock(
                    elements=[
                        FeedbackButtonsElement(
                            action_id=FEEDBACK_ACTION,
                            positive_button=FeedbackButtonObject(
                                text="👍", value="good", accessibility_label="Good answer"
                            ),
                            negative_button=FeedbackButtonObject(
                                text="👎", value="bad", accessibility_label="Bad answer"
                            ),
                        )
                    ]
                )
            )
        return blocks

    async def upload_images(
        self,
        place: Place,
        thread_ts: str,
        images: Sequence[Image],
        *,
        comment: str,
        http: aiohttp.ClientSession | None,
    ) -> str:
        """Slack's external upload, the flow of slack-sdk's files_upload_v2 taken one step at a
        time so that each is paced and retried alone on a 429: files.getUploadURLExternal per
        file, its bytes POSTed to the upload_url, then one files.completeUploadExternal sharing
        them all. Arguments go in form bodies (files_upload_v2 puts them in the URL, and a 429
        inside it repeated every step, uploading the files again)."""
        if http is None:
            raise PlatformError("the Slack adapter is not started")
        shared: list[dict[str, str]] = []
        for image in images:
            alt = truncate(image.caption or comment or image.filename, 1000)
            step = {"filename": image.filename, "length": len(image.data), "alt_txt": alt}
            response = await self.api.call(
                "files.getUploadURLExternal",
                partial(self.client.api_call, "files.getUploadURLExternal", data=step),
                team=place.workspace,
            )
            await _put(http, str(response["upload_url"]), image)
            shared.append({"id": str(response["file_id"]), "title": image.filename})
        done: dict[str, Any] = {"files": json.dumps(shared), "channel_id": place.channel}
        if thread_ts:
            done["thread_ts"] = thread_ts
        if comment.strip():
            done["initial_comment"] = truncate(markdown_to_mrkdwn(comment), TEXT_CHARS)
        response = await self.api.call(
            "files.completeUploadExternal",
            partial(self.client.api_call, "files.completeUploadExternal", data=done),
            team=place.workspace,
        )
        files = response.get("files") or []
        return str(files[0].get("id", "")) if files else ""


async def _put(http: aiohttp.ClientSession, url: str, image: Image) -> None:
    """An upload's bytes to its upload_url (the body is the file itself)."""
    try:
        async with http.post(url, data=image.data) as response:
            if response.status != 200:
                raise PlatformError(
                    f"Slack did not take the upload of {image.filename} (HTTP {response.status})"
                )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise PlatformError(f"uploading {image.filename} failed: {type(exc).__name__}") from None
