"""The error tree of grokbot. Errors are raised where the fact is known; bot/wording.py alone turns
them into user text, and the one catch site (bot/telling.py) tells it. An error's message is for the
log; only BadInput, PermissionDenied and PlatformError.user_text are written for the person.

    BotError
    ├── BadInput                 the user's request is malformed; says what is accepted
    ├── PermissionDenied         an admin command from a non-admin
    ├── QuotaExceeded            a spending or image limit would be crossed
    ├── GrokError                anything the xAI API said or failed to say
    │   ├── GrokRateLimited      429 (retry_after when known)
    │   ├── GrokUnavailable      5xx, timeouts, network failures
    │   ├── GrokAuthFailed       401/403, a wrong key, no credits, spending limit
    │   │   └── GrokOutOfCredits no credits or the team's spending limit (403 or 429 with that text)
    │   ├── GrokRejected         other 4xx: the request itself was refused
    │   │   ├── GrokModerated    a generated image or prompt was blocked by moderation
    │   │   └── DeferredGone     a deferred result expired or was already collected (404)
    │   ├── GrokStreamBroken     a stream ended early or garbled; keeps what was received
    │   └── GrokInvalidOutput    a structured reply did not match its schema
    └── PlatformError            Discord or Slack refused or failed an action (user_text: what it
        │                        means for the person, when it means something to them)
        ├── PlatformRateLimited  the platform answered 429 (retry_after seconds)
        ├── PlatformUncertain    the connection failed after the request went out: it may be done
        └── AnswerStopped        the person stopped the answer in the chat

A deferred result that is not ready yet is not an error: `fetch_deferred` returns None.
"""

from __future__ import annotations

from datetime import datetime


class BotError(Exception):
    """Base of every error grokbot expects and explains to users."""


class BadInput(BotError):
    """The user's input cannot be used; the message says what is accepted."""


class PermissionDenied(BotError):
    """The caller may not run this command."""


class QuotaExceeded(BotError):
    """A request would cross a limit. Nothing upstream was called."""

    def __init__(
        self,
        *,
        limit: str,
        limit_amount: int,
        used_amount: int,
        unit: str,
        resets_at: datetime | None,
        needed_amount: int = 0,
        kind: str = "",
        model: str = "",
    ) -> None:
        self.limit = limit  # e.g. "daily spend", "monthly spend", "daily images", "workspace monthly"
        self.limit_amount = limit_amount  # ticks, or images when unit == "images"
        self.used_amount = used_amount
        self.unit = unit  # "ticks" or "images"
        self.resets_at = resets_at
        # What the smallest acceptable request needs of this limit (0: not known), and what it was
        # ("chat", "image") and from which model, so that a refusal can say what would still fit.
        self.needed_amount = needed_amount
        self.kind = kind
        self.model = model
        super().__init__(f"{limit} limit reached")

    @property
    def remaining(self) -> int:
        return max(0, self.limit_amount - self.used_amount)


class GrokError(BotError):
    """The xAI API failed or refused; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class GrokRateLimited(GrokError):
    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=429)


class GrokUnavailable(GrokError):
    pass


class GrokAuthFailed(GrokError):
    pass


class GrokOutOfCredits(GrokAuthFailed):
    """xAI refused for credits or the team's spending limit. The client then pauses its calls for
    `retry_in` seconds instead of asking again at once (a refusal is not retried)."""

    def __init__(self, message: str, *, status: int | None = None, retry_in: float = 0.0) -> None:
        self.retry_in = retry_in
        super().__init__(message, status=status)


class GrokRejected(GrokError):
    pass


class GrokModerated(GrokRejected):
    pass


class DeferredGone(GrokRejected):
    pass


class GrokStreamBroken(GrokError):
    """The stream stopped before its end; `text` and `reasoning` hold what had arrived."""

    def __init__(self, message: str, *, text: str = "", reasoning: str = "") -> None:
        self.text = text
        self.reasoning = reasoning
        super().__init__(message)


class GrokInvalidOutput(GrokError):
    """A structured completion did not parse or validate against its schema."""

    def __init__(self, message: str, *, raw: str = "") -> None:
        self.raw = raw
        super().__init__(message)


class PlatformError(BotError):
    """Discord or Slack refused or failed an action. The message is for the log (it may name
    internals); `user_text`, when set, is what the refusal means for the person who asked (e.g.
    "invite me to this channel"), and the wording place shows it instead of a generic sentence."""

    def __init__(self, message: str, *, user_text: str = "") -> None:
        self.user_text = user_text
        super().__init__(message)


class PlatformUncertain(PlatformError):
    """The request was sent but no answer came (timeout, dropped connection): it may have happened.
    Work that must not be repeated (a delivered answer) treats it as done-perhaps, not as refused."""


class AnswerStopped(PlatformError):
    """The person stopped the answer in the chat (Slack's stop button on a streamed answer): the
    platform takes no more of it, so the engine stops reading Grok's stream and shows nothing more."""


class PlatformRateLimited(PlatformError):
    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)
