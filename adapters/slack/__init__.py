"""The Slack adapter: slack-bolt AsyncApp in, the seam's Platform/Reply out. See `adapters.slack.app`."""

from adapters.slack.app import SlackAdapter

__all__ = ["SlackAdapter"]
