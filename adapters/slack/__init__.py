"""grokbot on Slack: `SlackAdapter(settings, engine, web=...)` serves a slack-bolt AsyncApp (HTTP or
Socket Mode) and answers through `SlackPlatform` (its `platform`, for jobs: deferred answers, digests).
The rest of the adapter (refusals, pacing, events, mrkdwn, the manifest) is its own modules' business.
"""

from __future__ import annotations

from adapters.slack.app import SlackAdapter
from adapters.slack.check import check_slack
from adapters.slack.platform import SlackPlatform

__all__ = ["SlackAdapter", "SlackPlatform", "check_slack"]
