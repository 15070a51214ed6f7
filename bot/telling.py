"""The one catch site: whatever goes wrong in a person's request is worded by bot/wording.py and told
to them (in the answer it broke, when one is open, else privately); an error's own message, which
may name internals, goes to the log only.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Protocol

from bot.errors import AnswerStopped, BotError, GrokError, GrokRejected, PlatformError
from bot.platform import Place, Platform
from bot.wording import apology, describe

__all__ = ["Audience", "Failable", "telling"]

log = logging.getLogger(__name__)


class Failable(Protocol):
    """An answer in progress that can be closed with a note (a Reply, a StreamWriter)."""

    async def fail(self, message: str) -> None:
        """Keep what was shown, end the answer, and add `message` saying what happened."""
        ...


@dataclass
class Audience:
    """The person a request came from, and where they hear what went wrong."""

    platform: Platform
    place: Place
    user_id: str
    # An answer already showing in the chat: a failure ends it there instead of a private note.
    open_reply: Failable | None = None

    async def tell(self, text: str) -> None:
        """In the open answer if there is one, else privately where the platform can; never raises."""
        if self.open_reply is not None:
            reply, self.open_reply = self.open_reply, None
            try:
                await reply.fail(text)
                return
            except PlatformError as exc:  # the adapter logs what the platform said
                log.warning("could not end the answer in %s: %s", self.place.key, type(exc).__name__)
        try:
            await self.platform.post_text(self.place, text, private_to=self.user_id)
        except PlatformError as exc:
            log.warning("could not tell the user in %s what happened: %s", self.place.key, type(exc).__name__)


@contextlib.asynccontextmanager
async def telling(
    audience: Audience, *, zone: tzinfo, clock: Callable[[], datetime]
) -> AsyncIterator[Audience]:
    """Run a person's request: an expected error is worded for them; anything else is logged with a
    traceback, and they get an error id to quote."""
    try:
        yield audience
    except AnswerStopped:
        log.info("stopped in the chat in %s", audience.place.key)  # they know: nothing to say
    except BotError as exc:
        _log(exc, audience.place)
        await audience.tell(describe(exc, zone=zone, now=clock()))
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s in %s", error_id, audience.place.key)
        await audience.tell(apology(error_id))


def _log(exc: BotError, place: Place) -> None:
    """What the person is not shown: the error's own message (Grok's errors have the key redacted)."""
    if isinstance(exc, GrokRejected):  # xAI's reason, for an admin to read
        log.warning("xAI rejected a request (HTTP %s) in %s: %s", exc.status, place.key, exc)
    elif isinstance(exc, PlatformError | GrokError):  # adapters warn of refusals that need an admin
        log.info("%s in %s: %s", type(exc).__name__, place.key, exc)
