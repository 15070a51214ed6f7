"""grokbot on Slack: `SlackAdapter(settings, engine, web=...)` serves a slack-bolt AsyncApp (HTTP or
Socket Mode) and answers through `SlackPlatform`. Beside it: the pacing it takes, the kinds of
Slack's refusals, the event and mrkdwn rules, and what the app manifest must match.
"""

from __future__ import annotations

from pathlib import Path

from adapters.slack.app import COMMAND, EVENTS_PATH, LISTENED_EVENTS, SlackAdapter
from adapters.slack.command import CommandPlatform
from adapters.slack.events import clean_text, incoming_from_event, is_noise, is_ts
from adapters.slack.messages import FEEDBACK_ACTION
from adapters.slack.mrkdwn import escape, markdown_to_mrkdwn, truncate, unescape
from adapters.slack.pacing import SPAN_S, Limit, Pacer
from adapters.slack.platform import SlackPlatform
from adapters.slack.refusals import (
    BlocksRefused,
    MessageTooLong,
    NotAMember,
    SlackRefused,
    StoppedByUser,
    StreamGone,
    StreamNotHere,
    StreamsUnavailable,
    refusal,
)
from adapters.slack.streams import Streams

MANIFEST = Path(__file__).with_name("manifest.yml")  # the Slack app's manifest (scopes, events, URLs)

__all__ = [
    "COMMAND",
    "EVENTS_PATH",
    "FEEDBACK_ACTION",
    "LISTENED_EVENTS",
    "MANIFEST",
    "SPAN_S",
    "BlocksRefused",
    "CommandPlatform",
    "Limit",
    "MessageTooLong",
    "NotAMember",
    "Pacer",
    "SlackAdapter",
    "SlackPlatform",
    "SlackRefused",
    "StoppedByUser",
    "StreamGone",
    "StreamNotHere",
    "Streams",
    "StreamsUnavailable",
    "clean_text",
    "escape",
    "incoming_from_event",
    "is_noise",
    "is_ts",
    "markdown_to_mrkdwn",
    "refusal",
    "truncate",
    "unescape",
]
