"""One answer streamed into the chat: Grok's stream fed into a StreamWriter (the model's thinking
and its searches shown until the answer starts; the code it ran and its sources after it), then
charged and recorded; an answer the budget cut says so at its end. A failure refunds the whole
hold and keeps what was shown in the history; the one catch site tells it in the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo

from sqlalchemy.exc import SQLAlchemyError

from bot import store
from bot.answer_lines import log_answer
from bot.callers import charge_key
from bot.conversation import estimate_tokens
from bot.db import Sessions
from bot.errors import AnswerStopped, BadInput, BotError, PlatformError
from bot.grok import (
    ChatRequest,
    Completion,
    ContentDelta,
    Gathering,
    GrokClient,
    ReasoningDelta,
    ResponseRequest,
    StreamEnd,
    StreamEvent,
    ToolCallDone,
    ToolCallStarted,
    Usage,
)
from bot.inflight import Flight, InFlight
from bot.platform import Incoming, Place, ShowsReasoning
from bot.quotas import Cap, Charge, Quotas, Reservation
from bot.streaming import EditBudgets, StreamWriter, activity_of, code_appendix, links_of
from bot.telling import Audience
from bot.upstream import Upstream
from bot.wording import INTERRUPTED, budget_cut

__all__ = ["Answers", "Pending", "Question"]

log = logging.getLogger(__name__)

THINKING_TICK_S = 2.0


@dataclass(frozen=True)
class Question:
    """A question to answer in a conversation, resolved from an Incoming."""

    incoming: Incoming
    place: Place  # the conversation's place (may differ from where the message was posted)
    prompt: str
    model: str
    reasoning: str | None
    defer: bool
    search: str = "auto"  # ask's `search`: auto | off | web | x


@dataclass
class Pending:
    """A question on its way to the model: everything needed to answer, charge and record it."""

    question: Question
    request: ChatRequest
    reservation: Reservation
    conversation_id: int
    asked: store.HistoryMessage  # the question as the history keeps it
    prompt_tokens: int  # our estimate, used when the API reports no usage
    cap: Cap | None = None  # the limit that cut the answer's allowance, if one did
    response: ResponseRequest | None = None  # the same on the Responses API, with its tools
    # The latest reasoning pieces; joined only when the thinking status is shown.
    reasoning: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    # When the request went to Grok and its first token came back (monotonic s), for the log line.
    started: float = 0.0
    first_token: float | None = None


class Answers:
    """Streams answers into the chat, and charges and records each."""

    def __init__(
        self,
        *,
        grok: GrokClient,
        upstream: Upstream,
        sessions: Sessions,
        quotas: Quotas,
        budgets: EditBudgets,
        edit_interval: float | None,
        zone: tzinfo,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        inflight: InFlight,
    ) -> None:
        self._grok = grok
        self.inflight = inflight  # the answers being written now (a stop settles them)
        self._zone = zone  # where a cut answer's limit resets is told in this time zone
        self._upstream = upstream
        self._sessions = sessions
        self._quotas = quotas
        self._budgets = budgets
        self._edit_interval = edit_interval
        self._clock = clock
        self._monotonic = monotonic

    async def stream(self, pending: Pending, audience: Audience) -> None:
        """Stream the answer to `pending` into the chat; charge and record it once delivered."""
        pending.started = self._monotonic()
        gathering = Gathering()
        flight = self.inflight.begin(pending.question.incoming.place)
        writer = self._writer(pending.question.incoming, audience, gathering, flight)
        try:
            await self._write(pending, audience, writer, gathering, flight)
        finally:
            await self.inflight.end(flight)

    async def _write(
        self, pending: Pending, audience: Audience, writer: StreamWriter, gathering: Gathering, flight: Flight
    ) -> None:
        completion: Completion | None = None
        try:
            # Closed only after the final edit: closing reads the response to its end, so that
            # its connection is reused, and that must not hold the last words back.
            events = self._upstream.stream(pending.request, pending.response, gathering=gathering)
            async with contextlib.aclosing(events):
                await writer.open()
                audience.open_reply = writer  # a failure from here on is told in the answer
                completion = await self._pump(writer, pending, events)
                flight.finishing = True  # a stop from here on lets the final edit be made
                if completion.finish_reason == "length" and pending.cap is not None:
                    writer.append("\n\n" + budget_cut(pending.cap, zone=self._zone, now=self._clock()))
                await _finish(writer, completion, thought=pending.question.reasoning is not None)
                audience.open_reply = None
        except AnswerStopped:
            await self._record_stopped(pending, completion, writer)
            return
        except BaseException as exc:
            # A stop cut it (cancelled, or an error the cancellation caused on the way out):
            # close the answer with the note, then end as usual.
            if flight.interrupted and isinstance(exc, asyncio.CancelledError | BotError):
                audience.open_reply = None
                await self._close_interrupted(pending, completion, writer)
                return
            await self._quotas.release(pending.reservation)  # nothing complete was delivered
            if isinstance(exc, BotError):
                await self._keep_shown(pending, writer)
            raise
        await self._record_delivered(pending, completion, writer)
        asked = pending.question.reasoning is not None
        if asked and completion.reasoning and isinstance(audience.platform, ShowsReasoning):
            await audience.platform.show_reasoning(pending.question.incoming.place, completion.reasoning)

    async def _close_interrupted(
        self, pending: Pending, completion: Completion | None, writer: StreamWriter
    ) -> None:
        """A stop cut the answer: what was shown stays, with the note at its end; the tokens streamed
        are charged and the turn recorded, as for an answer stopped in the chat."""
        log.info("answer interrupted by a stop in %s", pending.question.place.key)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()  # the stop's cancellation is handled here
        try:
            await writer.fail(INTERRUPTED)
        except PlatformError as exc:
            log.warning("could not close an interrupted answer in %s: %s", pending.question.place.key, exc)
        await self._record_stopped(pending, completion, writer, finish="interrupted")

    def _writer(
        self, incoming: Incoming, audience: Audience, gathering: Gathering, flight: Flight
    ) -> StreamWriter:
        writer = StreamWriter(
            audience.platform,
            incoming.place,
            budgets=self._budgets,
            reply_to=incoming.message_id,
            interval=self._edit_interval,
            clock=self._monotonic,
            before_edit=gathering.flush,  # each edit shows what the connection holds
            on_message=flight.showing,
        )
        return writer

    async def _pump(
        self, writer: StreamWriter, pending: Pending, events: AsyncIterator[StreamEvent]
    ) -> Completion:
        """Feed the model's stream into the writer; show thinking until the answer starts."""
        thinking = pending.question.reasoning is not None
        started = self._monotonic()
        await writer.status("💭 Thinking…" if thinking else "✍️ Writing…")
        ticker = asyncio.create_task(self._think(writer, pending, started)) if thinking else None
        answering = False
        try:
            async for event in events:
                if pending.first_token is None:
                    pending.first_token = self._monotonic()
                if writer.stopped:  # closing the stream stops the generation upstream
                    raise AnswerStopped("the answer was stopped in the chat")
                if type(event) is ContentDelta:
                    if not answering:
                        answering = self._answering(writer, ticker, started)
                    writer.append(event.text)
                elif type(event) is ReasoningDelta:
                    pending.reasoning.append(event.text)
                elif isinstance(event, ToolCallStarted | ToolCallDone):
                    await writer.activity(activity_of(event.call))
                elif isinstance(event, StreamEnd):
                    return event.completion
        finally:
            if ticker is not None:
                ticker.cancel()
        raise BadInput("The answer stream ended without a result.")  # unreachable by the client's contract

    def _answering(self, writer: StreamWriter, ticker: asyncio.Task[None] | None, started: float) -> bool:
        """The answer's first words: the thinking, where it was shown, ends with how long it took."""
        if ticker is not None:
            ticker.cancel()
            writer.set_prefix(f"_Thought for {self._monotonic() - started:.0f} s._\n\n")
        return True

    async def _think(self, writer: StreamWriter, pending: Pending, started: float) -> None:
        """While the model reasons: show for how long, and the latest line of its reasoning if exposed."""
        while True:
            await asyncio.sleep(THINKING_TICK_S)
            seconds = self._monotonic() - started
            tail = "".join(pending.reasoning)[-160:].strip().rsplit("\n", 1)[-1][-120:]
            line = f"💭 Thinking… {seconds:.0f} s"
            await writer.status(f"{line}\n> {tail}" if tail else line)

    async def _keep_shown(self, pending: Pending, writer: StreamWriter) -> None:
        """A failed answer: keep what was shown in the history, so the conversation matches the chat."""
        if not writer.text:
            return
        partial = store.HistoryMessage(role="assistant", text=writer.text, finish_reason="error")
        try:
            await store.add_turns(
                self._sessions, pending.conversation_id, [pending.asked, partial], now=self._clock()
            )
        except (SQLAlchemyError, OSError):
            log.exception("could not keep a failed answer in %s", pending.question.place.key)

    async def _record_delivered(self, pending: Pending, completion: Completion, writer: StreamWriter) -> None:
        usage = completion.usage or Usage(
            prompt_tokens=pending.prompt_tokens, completion_tokens=estimate_tokens(completion.text)
        )
        try:
            await self._record(pending, completion, usage, writer)
        except (SQLAlchemyError, OSError):
            # The person already has the whole answer: no apology. The hold is swept later.
            log.exception("could not record a delivered answer in %s", pending.question.place.key)

    async def _record_stopped(
        self,
        pending: Pending,
        completion: Completion | None,
        writer: StreamWriter,
        *,
        finish: str = "stopped",
    ) -> None:
        """The person stopped the answer in the chat: nothing more is shown. What Grok generated
        until then is billed by xAI, so it is charged (never the whole estimate), and the history
        keeps what the chat showed."""
        question = pending.question
        if finish == "stopped":
            log.info("answer stopped in the chat in %s", question.place.key)
        usage = completion.usage if completion is not None else None
        if completion is None or usage is None:  # stopped mid-stream: estimate what was generated
            thought = "".join(pending.reasoning)
            usage = Usage(
                prompt_tokens=pending.prompt_tokens,
                completion_tokens=estimate_tokens(writer.text),
                reasoning_tokens=estimate_tokens(thought),
            )
            completion = Completion("", question.model, writer.text, thought, "", usage, "")
        shown = replace(completion, text=writer.shown_text, finish_reason=finish)
        try:
            await self._record(pending, shown, usage, writer)
        except (SQLAlchemyError, OSError):
            log.exception("could not record a stopped answer in %s", question.place.key)

    async def _record(
        self, pending: Pending, completion: Completion, usage: Usage, writer: StreamWriter
    ) -> None:
        """Settle the hold with what `usage` costs, and add the question and answer to the history."""
        question, incoming = pending.question, pending.question.incoming
        model = completion.model or question.model
        prices = self._grok.prices
        cost = prices.cost_ticks(model, usage)
        tools = prices.tools.of(usage.tools)
        await self._quotas.settle(
            pending.reservation,
            _charge(pending, usage, model=model, cost=cost, tools=tools, request=completion.id),
        )
        answer = store.assistant_turn(completion, model=question.model, usage=usage, cost_ticks=cost)
        messages = (incoming.message_id, *writer.message_ids)
        links = store.Links(incoming.place.platform, incoming.place.channel, messages)
        await store.add_turns(
            self._sessions, pending.conversation_id, [pending.asked, answer], now=self._clock(), links=links
        )
        now, first = self._monotonic(), pending.first_token
        log_answer(
            "chat",
            question.place,
            user=incoming.author.id,
            model=model,
            cost_ticks=cost,
            usage=usage,
            first_token_s=None if first is None else first - pending.started,
            total_s=now - pending.started,
            finish=completion.finish_reason,
        )


async def _finish(writer: StreamWriter, completion: Completion, *, thought: bool) -> None:
    """The answer as final, then the code Grok ran and the sources it used; the reasoning summary
    (when reasoning was asked for) for a reply that keeps it viewable after the answer."""
    await writer.finish(
        sources=links_of(completion.sources),
        appendix=code_appendix(completion.tool_calls),
        reasoning=completion.reasoning if thought else "",
    )


def _charge(pending: Pending, usage: Usage, *, model: str, cost: int, tools: int, request: str) -> Charge:
    """The ledger entry of an answer: its tokens and cost, its tool calls and their part of the
    cost (`tools`, at xAI's list prices), once per platform delivery."""
    question = pending.question
    return Charge(
        kind="chat",
        model=model,
        cost_ticks=cost,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        tool_calls=usage.tools.calls,
        tool_cost_ticks=min(tools, cost),
        xai_request_id=request,
        conversation_key=question.place.key,
        idempotency_key=charge_key("chat", question.incoming),
    )
