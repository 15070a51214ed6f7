"""grokbot on Slack: `SlackAdapter(settings, engine, web=...)` serves a slack-bolt AsyncApp (HTTP or
Socket Mode) and answers through `SlackPlatform`. Beside it: the pacing it takes, the kinds of
Slack's refusals, the event and mrkdwn rules, and what the app manifests must match.
"""

from __future__ import annotations

from pathlib import Path

from adapters.slack.agent import SUGGESTED_PROMPTS
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

# The Slack app's manifests (features, scopes, events): over HTTP (with request URLs), and in Socket Mode.
MANIFEST = Path(__file__).with_name("manifest.yml")
SOCKET_MANIFEST = Path(__file__).with_name("manifest.socket.yml")

__all__ = [
    "COMMAND",
    "EVENTS_PATH",
    "FEEDBACK_ACTION",
    "LISTENED_EVENTS",
    "MANIFEST",
    "SOCKET_MANIFEST",
    "SPAN_S",
    "SUGGESTED_PROMPTS",
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
