"""The Web API calls that write the bot's messages: native streams (chat.startStream, appendStream,
stopStream), posts and edits in standard Markdown (markdown_text, markdown blocks), the loading
status, feedback buttons and file uploads. SlackReply composes them; all go through SlackApi.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextActionsBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    MarkdownBlock,
)
from slack_sdk.models.messages.chunk import Chunk
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.api import SlackApi
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate
from adapters.slack.native import reasoning_blocks, sources_blocks
from adapters.slack.urls import SlackUrls
from bot.errors import PlatformError
from bot.platform import Image, Place, SourceLink

log = logging.getLogger(__name__)

FEEDBACK_ACTION = "grok_feedback"
TEXT_CHARS = 3_900  # one message's mrkdwn `text` (msg_too_long at about 4,000)


class SlackMessages:
    def __init__(self, api: SlackApi, client: AsyncWebClient, urls: SlackUrls) -> None:
        self.api = api
        self.client = client
        self.urls = urls

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

    async def suggest_prompts(
        self, place: Place, prompts: Sequence[Mapping[str, str]], *, title: str
    ) -> None:
        """Prompts shown at the top of a person's conversation with the app (the agent view's
        Messages tab); without thread_ts, which the agent view refuses silently."""
        try:
            await self.api.call(
                "assistant.threads.setSuggestedPrompts",
                partial(
                    self.client.assistant_threads_setSuggestedPrompts,
                    channel_id=place.channel,
                    prompts=[dict(p) for p in prompts],
                    title=title,
                ),
                team=place.workspace,
            )
        except PlatformError as exc:  # suggestions are a courtesy: the conversation works without
            log.warning("setSuggestedPrompts failed in %s: %s", place.channel, exc)

    async def start_stream(
        self,
        place: Place,
        thread_ts: str,
        text: str,
        *,
        recipient: str = "",
        recipient_team: str = "",
        chunks: Sequence[Chunk] = (),
    ) -> str:
        """A native stream in the thread, opened with `text` or `chunks` (task cards)."""
        response = await self.api.call(
            "chat.startStream",
            lambda: self.client.chat_startStream(
                channel=place.channel,
                thread_ts=thread_ts,
                markdown_text=text or None,
                chunks=list(chunks) or None,
                recipient_user_id=recipient or None,
                recipient_team_id=recipient_team or None,
            ),
            team=place.workspace,
            channel=place.channel,
            edit=True,
        )
        return str(response["ts"])

    async def append_stream(self, place: Place, ts: str, text: str, *, chunks: Sequence[Chunk] = ()) -> None:
        """`text` (Markdown) or `chunks` (task cards) added to a native stream."""
        await self.api.call(
            "chat.appendStream",
            lambda: self.client.chat_appendStream(
                channel=place.channel, ts=ts, markdown_text=text or None, chunks=list(chunks) or None
            ),
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

    async def update_markdown(self, place: Place, ts: str, text: str, *, interim: bool = False) -> bool:
        """`interim`: an edit of an answer in progress, made only when it leaves room for the finals
        of the answers in progress (Pacer.reserve); False when it was skipped."""
        if interim and not self.api.pacer.room_beyond_finals("chat.update", place.workspace):
            return False
        await self.api.call(
            "chat.update",
            lambda: self.client.chat_update(channel=place.channel, ts=ts, markdown_text=text),
            team=place.workspace,
            edit=True,
        )
        return True

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

    async def post_ephemeral(self, place: Place, thread_ts: str, user: str, text: str) -> str:
        """`text` (mrkdwn) shown to `user` only; needs the bot in the channel."""
        response = await self.api.call(
            "chat.postEphemeral",
            partial(
                self.client.chat_postEphemeral,
                channel=place.channel,
                user=user,
                text=text,
                thread_ts=thread_ts or None,
            ),
            team=place.workspace,
        )
        return str(response.get("message_ts") or "")

    async def delete(self, place: Place, ts: str) -> None:
        await self.api.call(
            "chat.delete", lambda: self.client.chat_delete(channel=place.channel, ts=ts), team=place.workspace
        )

    def final_blocks(
        self, text: str, *, feedback: bool, sources: Sequence[SourceLink] = (), reasoning: str = ""
    ) -> list[Block]:
        """The answer as a markdown block, then what ends it (`end_blocks`)."""
        blocks: list[Block] = [MarkdownBlock(text=text)] if text.strip() else []
        return blocks + self.end_blocks(feedback=feedback, sources=sources, reasoning=reasoning)

    def end_blocks(
        self, *, feedback: bool, sources: Sequence[SourceLink] = (), reasoning: str = ""
    ) -> list[Block]:
        """What follows an answer's text (a stream's stopStream blocks, shown at its bottom): its
        sources as a context block of links, the button that shows its reasoning, and (for
        answers) the feedback buttons."""
        blocks: list[Block] = [*sources_blocks(sources), *reasoning_blocks(reasoning)]
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
        self, place: Place, thread_ts: str, images: Sequence[Image], *, comment: str
    ) -> str:
        """Slack's external upload, the flow of slack-sdk's files_upload_v2 taken one step at a
        time so that each is paced and retried alone on a 429: files.getUploadURLExternal per
        file, its bytes POSTed to the upload_url, then one files.completeUploadExternal sharing
        them all. Arguments go in form bodies (files_upload_v2 puts them in the URL, and a 429
        inside it repeated every step, uploading the files again)."""
        self.urls.session()  # not connected: refused before Slack is asked for anything
        shared = [await self._upload(place, image, comment) for image in images]
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

    async def _upload(self, place: Place, image: Image, comment: str) -> dict[str, str]:
        """One file's upload, not yet shared anywhere: its id and title for completeUploadExternal."""
        alt = truncate(image.caption or comment or image.filename, 1000)
        step = {"filename": image.filename, "length": len(image.data), "alt_txt": alt}
        response = await self.api.call(
            "files.getUploadURLExternal",
            partial(self.client.api_call, "files.getUploadURLExternal", data=step),
            team=place.workspace,
        )
        await self.urls.upload(str(response["upload_url"]), image)
        return {"id": str(response["file_id"]), "title": image.filename}
