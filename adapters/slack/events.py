"""Slack payloads → the seam's values: which events are noise, where a message's conversation lives,
its text (unescaped, without the bot's mention) and its attachments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adapters.slack.mrkdwn import unescape
from bot.platform import Attachment, Author, Feedback, Incoming, Place

# Message subtypes that are people writing; every other subtype (message_changed, message_deleted,
# channel_join, bot_message, ...) is noise for the bot.
USER_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})
_TS = re.compile(r"^\d+\.\d+$")


def is_ts(value: str) -> bool:
    """A Slack message timestamp (threads are addressed by their parent's ts)."""
    return bool(_TS.match(value))


def bot_user_of(body: Mapping[str, Any], fallback: str = "") -> str:
    """The bot's user id for this delivery (Events API payloads carry it in `authorizations`)."""
    for authorization in body.get("authorizations") or ():
        if authorization.get("is_bot") and authorization.get("user_id"):
            return str(authorization["user_id"])
    return fallback


def is_noise(body: Mapping[str, Any], bot_user_id: str = "") -> bool:
    """Events the bot never answers, dropped (and acknowledged) before any other work.

    Bots' messages (our own included, and every chat.update's message_changed); channel messages
    outside threads (a mention there arrives as app_mention); and channel messages that mention the
    bot, since the app_mention of the same message answers them.
    """
    if body.get("type") != "event_callback":
        return False
    event = body.get("event") or {}
    kind = event.get("type")
    if kind not in ("message", "app_mention"):
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return True
    if kind == "app_mention":
        return not event.get("user")
    if event.get("subtype", "") not in USER_SUBTYPES or not event.get("user"):
        return True
    if event.get("channel_type") == "im":
        return False
    if not event.get("thread_ts"):
        return True
    bot = bot_user_of(body, bot_user_id)
    text = str(event.get("text", ""))
    return bool(bot) and (f"<@{bot}>" in text or f"<@{bot}|" in text)  # <@U…|name> is a mention too


def clean_text(text: str, bot_user_id: str) -> str:
    """Unescape Slack's &amp; &lt; &gt; and drop the bot's own mention."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>\s?", "", text)
    return unescape(text).strip()


# An Attachment's url for a file the event only names (Slack Connect's `file_access:
# check_file_info`): SlackPlatform.with_files reads it with files.info before the engine sees it.
FILE_INFO = "slack-files-info:"


def attachments_of(event: Mapping[str, Any]) -> tuple[Attachment, ...]:
    """The message's files. Without `url_private` a file is a Slack Connect stub (resolved with
    files.info when downloaded) or hidden or deleted (url "": the engine says it cannot be read)."""
    attachments = []
    for f in event.get("files") or ():
        if not isinstance(f, Mapping):
            continue
        name = str(f.get("name") or f.get("title") or f.get("id") or "file")
        if f.get("url_private"):
            url = str(f["url_private"])
        elif f.get("file_access") == "check_file_info" and f.get("id"):
            url = FILE_INFO + str(f["id"])
        else:
            url = ""
        attachments.append(Attachment(name, f.get("mimetype"), int(f.get("size") or 0), url=url))
    return tuple(attachments)


def thread_of(event: Mapping[str, Any]) -> str:
    """The thread a message's answer goes to: its thread, or a new thread under the message."""
    return str(event.get("thread_ts") or event.get("ts") or "")


def incoming_from_event(
    body: Mapping[str, Any], event: Mapping[str, Any], *, author: Author, bot_user_id: str
) -> Incoming:
    """An app_mention or a user message (DM, or a thread reply) as an Incoming.

    Mentions and DMs are addressed; an un-mentioned channel thread reply is not (the engine answers
    it only inside an existing conversation). A reply in the thread of one of the bot's own
    top-level messages names that message in `reply_to`, which continues its conversation.
    """
    team = str(body.get("team_id") or event.get("team") or "")
    channel = str(event.get("channel") or "")
    ts = str(event.get("ts") or "")
    thread_ts = str(event.get("thread_ts") or "")
    addressed = event.get("type") == "app_mention" or event.get("channel_type") == "im"
    return Incoming(
        place=Place("slack", team, channel, thread_of(event)),
        author=author,
        text=clean_text(str(event.get("text") or ""), bot_user_id),
        attachments=attachments_of(event),
        message_id=ts,
        reply_to=thread_ts if thread_ts and thread_ts != ts else "",
        event_id=str(body.get("event_id") or ""),
        deduplicate=True,
        addressed=addressed,
    )


def recipient_team(body: Mapping[str, Any], event: Mapping[str, Any]) -> str:
    """The team of the user being answered (differs from the workspace in Slack Connect channels)."""
    return str(event.get("user_team") or event.get("team") or body.get("team_id") or "")


def feedback_of(body: Mapping[str, Any], action: Mapping[str, Any]) -> Feedback:
    """A click on an answer's feedback buttons (a block_actions payload) as the seam's Feedback."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    place = Place(
        "slack",
        str((body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id") or ""),
        str(container.get("channel_id") or (body.get("channel") or {}).get("id") or ""),
        str(container.get("thread_ts") or message.get("thread_ts") or ""),
    )
    return Feedback(
        place,
        message_id=str(container.get("message_ts") or message.get("ts") or ""),
        user_id=str((body.get("user") or {}).get("id") or ""),
        value=str(action.get("value") or ""),
    )
