"""One digest made: the channel read and composed within a deadline, the digest posted, the workspace
charged. A scheduled slot and `digest now` share these steps; their Occasion records the run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar

from bot.digests.compose import Composed, compose
from bot.errors import GrokError, PlatformError
from bot.grok import GrokClient
from bot.platform import ChannelMessage, Place, Platform
from bot.quotas import Charge, Quotas, Subject
from bot.streaming import split_message
from bot.wording import describe

log = logging.getLogger(__name__)
T = TypeVar("T")
OutcomeStatus = Literal["posted", "empty", "failed"]
# Reading and summarising a channel may take this long: where the platform allows one history
# page a minute (Slack, for some apps: 15 messages a page), 2,000 messages take 134 minutes.
READ_DEADLINE_S = 3 * 3600.0


@dataclass(frozen=True)
class DigestJob:
    """What one digest covers: the channel read, where it is posted, its period and its charge key."""

    source: Place
    target: Place
    since: datetime
    until: datetime
    timezone: str
    post_when_empty: bool
    charge_key: str


@dataclass(frozen=True)
class DigestOutcome:
    status: OutcomeStatus
    message_count: int
    cost_ticks: int
    message_ids: tuple[str, ...] = ()
    error: str = ""


class Occasion(Protocol):
    """Why a digest is made, and what records its steps: a claimed slot of a schedule
    (bot.digests.runs.ScheduledRun) or a digest asked for now (OnDemand)."""

    @property
    def retry(self) -> str:
        """What the failure notice tells the channel about the messages it did not cover."""
        ...

    async def hold(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` (the read and compose) while the run stays this instance's; a run lost to
        another instance stops `work` and raises LeaseLost."""
        ...

    async def posting(self, message_count: int) -> None:
        """Recorded before the first post: from here on the digest is never posted twice."""
        ...

    async def failed(self, error: str) -> None:
        """The read or compose failed: nothing was posted or charged, the period stays open."""
        ...

    async def finished(
        self, status: OutcomeStatus, *, done: bool, cost_ticks: int = 0, error: str = ""
    ) -> None:
        """Posting ended; `done`: the period counts as summarised."""
        ...


class OnDemand:
    """A digest asked for now: nothing to hold or to record but its charge."""

    retry = "Try again later."

    async def hold(self, work: Coroutine[Any, Any, T]) -> T:
        return await work

    async def posting(self, message_count: int) -> None:
        pass

    async def failed(self, error: str) -> None:
        pass

    async def finished(
        self, status: OutcomeStatus, *, done: bool, cost_ticks: int = 0, error: str = ""
    ) -> None:
        pass


@dataclass(frozen=True)
class _Posted:
    ids: tuple[str, ...]
    refused: PlatformError | None = None


class DigestMaker:
    """Makes digests: read and compose, post, charge; the same steps for every occasion."""

    def __init__(
        self,
        *,
        grok: GrokClient,
        quotas: Quotas,
        platforms: Mapping[str, Platform],
        clock: Callable[[], datetime],
        model: str,
        chunk_chars: int,
        deadline: float = READ_DEADLINE_S,
    ) -> None:
        self._grok = grok
        self._quotas = quotas
        self._platforms = platforms
        self._clock = clock
        self._model = model
        self._chunk_chars = chunk_chars
        self._deadline = deadline

    async def make(self, job: DigestJob, occasion: Occasion) -> DigestOutcome:
        """Read `job.source` over its period, post its digest in `job.target` and charge for it."""
        platform = self._platforms[job.target.platform]
        try:
            messages, composed = await self._read_in_time(platform, job, occasion)
        except (GrokError, PlatformError) as exc:
            return await self._failed(platform, job, occasion, exc)
        count = len(messages)
        await occasion.posting(count)
        posted = await self._post(platform, job, composed) if messages or job.post_when_empty else _Posted(())
        if posted.refused is not None:
            # Refused: not posted (nothing charged). A digest half out counts as done.
            log.warning("digest of %s not posted: %s", job.source.key, posted.refused)
            await occasion.finished("failed", done=bool(posted.ids), error=str(posted.refused))
            return DigestOutcome("failed", count, 0, posted.ids, error=str(posted.refused))
        await self._charge(job, composed)
        status: OutcomeStatus = "posted" if messages else "empty"
        await occasion.finished(status, done=True, cost_ticks=composed.cost_ticks)
        log.info(
            "digest of %s: %s, %d messages, %d ticks", job.source.key, status, count, composed.cost_ticks
        )
        return DigestOutcome(status, count, composed.cost_ticks, posted.ids)

    async def _read_in_time(
        self, platform: Platform, job: DigestJob, occasion: Occasion
    ) -> tuple[list[ChannelMessage], Composed]:
        """The read and compose, held by the occasion; past the deadline, a PlatformError."""
        try:
            async with asyncio.timeout(self._deadline) as deadline:
                return await occasion.hold(self._read_and_compose(platform, job))
        except TimeoutError:
            if not deadline.expired():
                raise
        seconds = self._deadline
        took = f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"
        slow = f"Reading and summarising the channel took longer than {took}"
        raise PlatformError(slow, user_text=slow + ".")  # a fact for the people who wait for it

    async def _read_and_compose(
        self, platform: Platform, job: DigestJob
    ) -> tuple[list[ChannelMessage], Composed]:
        history = await platform.channel_history(job.source, since=job.since, until=job.until)
        messages = [m for m in history if not m.author.is_bot and m.text.strip()]
        composed = await compose(
            self._grok,
            messages,
            source=job.source,
            target=job.target,
            since=job.since,
            until=job.until,
            timezone=job.timezone,
            model=self._model,
            chunk_chars=self._chunk_chars,
        )
        return messages, composed

    async def _post(self, platform: Platform, job: DigestJob, composed: Composed) -> _Posted:
        ids: list[str] = []
        try:
            for part in split_message(composed.text, platform.capabilities.max_message_length):
                ids.append(await platform.post_text(job.target, part))
        except PlatformError as exc:
            return _Posted(tuple(ids), exc)
        return _Posted(tuple(ids))

    async def _charge(self, job: DigestJob, composed: Composed) -> None:
        """The workspace pays for what Grok used, once per charge key."""
        usage = composed.usage
        if not (composed.cost_ticks or usage.total_tokens):
            return
        charge = Charge(
            kind="digest",
            model=composed.model[:64],
            cost_ticks=composed.cost_ticks,
            idempotency_key=job.charge_key[:160],
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
            conversation_key=f"digest:{job.source.key}"[:300],
        )
        await self._quotas.charge(Subject(job.target.platform, job.target.workspace, ""), charge)

    async def _failed(
        self, platform: Platform, job: DigestJob, occasion: Occasion, exc: GrokError | PlatformError
    ) -> DigestOutcome:
        """Not charged: the workspace got no digest. The period stays open for the next run."""
        # Users read the one wording of errors; the raw text goes to the log.
        reason = describe(exc, zone=UTC, now=self._clock()).rstrip(".")
        log.warning("digest run failed: %s", exc)
        await occasion.failed(str(exc))
        try:
            await platform.post_text(
                job.target, f"⚠️ The digest could not be made. {reason}. {occasion.retry}"
            )
        except PlatformError as post_error:
            log.warning("digest failure notice not posted: %s", post_error)
        return DigestOutcome("failed", 0, 0, error=str(exc))
