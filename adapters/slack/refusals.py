"""What Slack's refusals mean: one error type per kind of `ok: false` answer the adapter acts on,
chosen in one place (`refusal`) from the method and Slack's error code, with what it means for the
person who asked (`user_text`) where it means something to them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.errors import AnswerStopped, PlatformError

# Slack's own wording of "too many requests": HTTP 429, or an ok:false answer of the posting methods.
RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})

# What a refusal means for the person who asked; the log gets it too, after Slack's code.
HINTS = {
    "not_in_channel": "I am not in this channel; invite me with `/invite @Grok`.",
    "channel_not_found": "I cannot see this channel; invite me with `/invite @Grok`.",
    "is_archived": "This channel is archived.",
    "restricted_action": "A workspace setting keeps me from posting here.",
    "missing_scope": "The Slack app lacks a permission; an admin should reinstall it from the manifest.",
    "invalid_auth": "My Slack token is not valid; an admin should check SLACK_BOT_TOKEN.",
    "token_revoked": "My Slack token was revoked; an admin should reinstall the app.",
    "account_inactive": "My Slack token belongs to a deactivated app or workspace.",
    "message_limit_exceeded": "This workspace has reached its plan's message limit.",
}


class SlackRefused(PlatformError):
    """Slack answered `{"ok": false, "error": ...}`. `method` and Slack's `error` code are for the
    log; `user_text` is the hint for the person where the code means something to them."""

    def __init__(self, method: str, error: str) -> None:
        self.method = method
        self.error = error
        hint = HINTS.get(error, "")
        detail = f"Slack refused {method} ({error})"
        super().__init__(f"{detail}: {hint}" if hint else detail, user_text=hint)


class NotAMember(SlackRefused):
    """The bot cannot post in this conversation (a DM between two people, a group DM, a private
    channel it is not in): a /grok answer can still go through the command's response_url."""


class MessageTooLong(SlackRefused):
    """msg_too_long: Slack takes no longer message; what it shows stays, the rest goes on in a new one."""


class BlocksRefused(SlackRefused):
    """The message's blocks (markdown block, feedback buttons) were refused: plain markdown_text goes."""


class StreamGone(SlackRefused):
    """The stream can no longer be appended to (it expired or ended server-side): chat.update goes on."""


class StreamNotHere(SlackRefused):
    """This conversation cannot stream (no recipient, a channel type or token without streams):
    this answer is posted and edited instead."""


class StreamsUnavailable(StreamNotHere):
    """Slack offers no streams at all (an unknown or deprecated method, a token type that may not
    stream): every answer in the workspace is posted and edited from now on."""


class StoppedByUser(SlackRefused, AnswerStopped):
    """The person pressed the stream's stop button: Slack takes no more of this answer."""


# Codes whose meaning depends on the method: a stream that cannot start here, or at all; a stream gone.
NOT_HERE = (
    "missing_recipient_user_id", "missing_recipient_team_id", "channel_type_not_supported",
    "invalid_arguments", "messages_tab_disabled", "restricted_action_non_threadable_channel",
    "user_not_found", "feature_not_enabled", "team_not_found", "invalid_chunks",
)  # fmt: skip
NOWHERE = ("unknown_method", "method_deprecated", "not_allowed_token_type")
GONE = ("message_not_in_streaming_state", "message_not_found", "cant_update_message")


def _meaning(codes: Sequence[str], kind: type[SlackRefused]) -> dict[str, type[SlackRefused]]:
    return dict.fromkeys(codes, kind)


_BY_METHOD = {
    "chat.startStream": _meaning(NOT_HERE, StreamNotHere) | _meaning(NOWHERE, StreamsUnavailable),
    "chat.appendStream": _meaning(GONE, StreamGone),
    "chat.stopStream": _meaning(GONE, StreamGone),
}
_BY_CODE = (
    _meaning(("stopped_by_user",), StoppedByUser)
    | _meaning(("msg_too_long",), MessageTooLong)
    | _meaning(("invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"), BlocksRefused)
    | _meaning(("not_in_channel", "channel_not_found"), NotAMember)
)


def refusal(method: str, error: str) -> SlackRefused:
    """The error for Slack's refusal of `method` with `error`: what the refusal means depends on
    the method for some codes (invalid_arguments on chat.startStream: this place cannot stream)."""
    kind = _BY_METHOD.get(method, {}).get(error) or _BY_CODE.get(error, SlackRefused)
    return kind(method, error)
