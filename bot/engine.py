"""The conversation engine: every message, command and feedback click from a person comes in through
`Engine.handle` or `Engine.feedback`, under the one catch site (bot/telling.py). A question becomes
a conversation turn here: its context, its prompt and its quota hold, then a streamed or deferred
answer (bot/answers.py). Commands run in bot/commands.py with a context of what they may use.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime

from bot import commands, store
from bot.admission import Admission, Ticket
from bot.allowance import ANSWER_TOKENS, Allowance, answer_ask, full_allowance, reasoning_allowance
from bot.answers import Answers, Pending, Question
from bot.callers import Caller
from bot.conversation import DEFAULT_SYSTEM_PROMPT, Prompt, build_prompt
from bot.db import Sessions
from bot.errors import BadInput
from bot.grok import (
    MAX_IMAGE_BYTES,
    ChatRequest,
    GrokClient,
    ImagePart,
    PriceBook,
    ResponseRequest,
    Tools,
    image_part,
    user_hash,
)
from bot.help_text import command_list
from bot.images import ImageMaker
from bot.inflight import InFlight
from bot.jobs import Deferrals
from bot.platform import Command, Feedback, Incoming, Place, Platform
from bot.quotas import Cap, Quotas, Reservation
from bot.search import tools_for
from bot.settings import Settings
from bot.store import PlaceSettings
from bot.streaming import EditBudgets, Shares
from bot.telling import Audience, telling
from bot.upstream import Upstream
from bot.wording import deferred_accepted

__all__ = ["ANSWER_TOKENS", "MAX_TOOL_CALLS", "Engine", "reasoning_allowance", "tool_allowance", "utc_now"]

FEEDBACK_VALUES = ("good", "bad")
# Grok's agent turns with server-side tools: sent as max_turns and reserved for as that many tool
# calls (parallel calls share a turn, so this bounds a typical answer, not the rarest one).
MAX_TOOL_CALLS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def tool_allowance(prices: PriceBook, model: str, tools: Tools, prompt_tokens: int) -> int:
    """What to reserve, beside the tokens' estimate, for the tool calls an answer may make."""
    return prices.tool_allowance_ticks(model, tools, max_calls=MAX_TOOL_CALLS, prompt_tokens=prompt_tokens)


class Engine:
    """What a person sends, answered: commands run, questions become conversation turns."""

    def __init__(
        self,
        settings: Settings,
        *,
        grok: GrokClient,
        sessions: Sessions,
        quotas: Quotas,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        deferrals: Deferrals | None = None,
        digests: commands.DigestBook | None = None,
        inflight: InFlight | None = None,
    ) -> None:
        self.settings = settings
        self.grok = grok
        self.sessions = sessions
        self.quotas = quotas
        self.clock = clock
        self.deferrals = deferrals
        self.digests = digests
        self.conversations = store.Conversations(sessions, clock=clock, monotonic=monotonic)
        self.images = ImageMaker(
            grok=grok, quotas=quotas, model=settings.grokbot_image_model, zone=settings.zone, clock=clock
        )
        self.upstream = Upstream(grok, api=settings.grokbot_xai_api)
        # Platform rate budgets: this instance's share of them (bot/jobs/shares.py keeps it), and
        # the engine's per-scope edit budgets scaled by it; adapters' own pacers subscribe too.
        self.shares = Shares()
        self.budgets = EditBudgets(clock=monotonic)
        self.shares.subscribe(self.budgets.set_share)
        self.answers = Answers(
            grok=grok,
            upstream=self.upstream,
            sessions=sessions,
            quotas=quotas,
            budgets=self.budgets,
            edit_interval=settings.grokbot_edit_interval_s,
            zone=settings.zone,
            clock=clock,
            monotonic=monotonic,
            inflight=inflight or InFlight(sessions, clock=clock),  # the answers a stop waits for
        )
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._arrivals = Admission()  # what is said in one place is taken up in the order it was said

    # -- entry points -------------------------------------------------------------------------

    async def handle(self, incoming: Incoming, platform: Platform) -> bool:
        """Answer one message or command from a person. Never raises: failures are told to them.
        False when the delivery was a repeat of one already answered (`Incoming.deduplicate`)."""
        with self._arrivals.take(incoming.place.key) as ticket:
            async with self._telling(Audience(platform, incoming.place, incoming.author.id)) as audience:
                if incoming.deduplicate and incoming.event_id and not await self._first_delivery(incoming):
                    return False
                await self._route(incoming, audience, ticket)
        return True

    async def feedback(self, feedback: Feedback, platform: Platform) -> None:
        """Record a person's feedback on an answer. Never raises: failures are told to them."""
        async with self._telling(Audience(platform, feedback.place, feedback.user_id)):
            if feedback.value not in FEEDBACK_VALUES:
                raise BadInput("Feedback on an answer is 👍 or 👎.")
            await store.record_feedback(
                self.sessions,
                feedback.place,
                message_id=feedback.message_id,
                user_id=feedback.user_id,
                value=feedback.value,
                now=self.clock(),
            )

    def _telling(self, audience: Audience) -> AbstractAsyncContextManager[Audience]:
        """The one catch site, with quota resets told in the operator's time zone."""
        return telling(audience, zone=self.settings.zone, clock=self.clock)

    async def _first_delivery(self, incoming: Incoming) -> bool:
        """True the first time this platform delivery id is seen, on any instance."""
        return await store.claim_event(
            self.sessions, platform=incoming.place.platform, event_id=incoming.event_id, now=self.clock()
        )

    async def _route(self, incoming: Incoming, audience: Audience, ticket: Ticket) -> None:
        incoming = await self._word_command(incoming)
        command = incoming.command
        if command is not None and command.error:
            raise BadInput(command.error)
        if command is None or command.name == "ask":
            question = await self._question(incoming)
            if question is not None:
                await self._converse(question, audience, ticket)
            return
        handler = commands.HANDLERS.get(command.name)
        if handler is None:
            raise BadInput(f"Unknown command `{command.name}`. {command_list()}")
        await ticket.turn()  # a command runs whole before what was said after it (reset, then ask)
        await handler(self._command_context(incoming, audience), incoming)

    async def _word_command(self, incoming: Incoming) -> Incoming:
        """A mention, or a message in a conversation, that is just a command word (`@Grok reset` in a
        thread) runs that command where it was said: slash commands carry no thread."""
        word = incoming.text.strip().strip("!.?").lower()
        if (
            incoming.command is None
            and word in commands.WORD_COMMANDS
            and (incoming.addressed or await self.conversation_place(incoming) is not None)
        ):
            return replace(incoming, command=Command(name=word))
        return incoming

    def _command_context(self, incoming: Incoming, audience: Audience) -> commands.CommandContext:
        return commands.CommandContext(
            settings=self.settings,
            sessions=self.sessions,
            clock=self.clock,
            quotas=self.quotas,
            conversations=self.conversations,
            images=self.images,
            digests=self.digests,
            caller=Caller.of(incoming, self.settings),
            audience=audience,
            conversation_place=self.conversation_place,
            prices=self.grok.prices,
        )

    # -- conversations ------------------------------------------------------------------------

    async def conversation_place(self, incoming: Incoming) -> Place | None:
        """Where this message's conversation lives, or None when the bot should stay silent."""
        if incoming.reply_to:
            ref = await self.conversations.of_message(
                platform=incoming.place.platform, channel=incoming.place.channel, message_id=incoming.reply_to
            )
            if ref is not None:
                return ref.place
        place = incoming.place
        if incoming.command is not None and not place.thread:
            # Slash-command questions continue the caller's own conversation in the channel.
            return place.in_thread(f"user:{incoming.author.id}")
        if not incoming.addressed and await self.conversations.find(place) is None:
            return None
        return place

    async def _question(self, incoming: Incoming) -> Question | None:
        options = commands.ask_options(incoming)
        place = await self.conversation_place(incoming)
        if place is None:
            return None
        if not options.prompt and not incoming.attachments:
            raise BadInput("Ask me something: write a question after the command or the mention.")
        return Question(
            incoming, place, options.prompt, options.model, options.reasoning, options.defer, options.search
        )

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def _image_parts(self, incoming: Incoming, platform: Platform) -> list[ImagePart]:
        parts = []
        for attachment in incoming.attachments:
            if attachment.size > MAX_IMAGE_BYTES:
                raise BadInput(
                    f"`{attachment.filename}` is {attachment.size / 1048576:.1f} MiB; I accept JPEG "
                    "or PNG images up to 10 MiB."
                )
            data = await platform.download(attachment)
            try:
                parts.append(image_part(data))
            except BadInput as exc:
                raise BadInput(f"`{attachment.filename}`: {exc}") from None
        return parts

    async def _converse(self, question: Question, audience: Audience, ticket: Ticket) -> None:
        """One turn: the conversation's context, the prompt, the quota hold, then the answer. It
        queues on the conversation's lock in arrival order, then lets the next message go."""
        images = await self._image_parts(question.incoming, audience.platform)
        caller = Caller.of(question.incoming, self.settings)
        await ticket.turn()
        async with self._lock(question.place.key):
            ticket.admit()
            context = await self.conversations.turn_context(question.place)
            question = self._placed(question, context.settings)
            tools = self._tools(question, context.settings)
            prompt = self._prompt(question, context, images, platform=audience.platform.name)
            reservation, allowance, cut = await self._hold(question, prompt, caller, tools)
            request = self._request(question, prompt, context.conversation.grok_conv_id, allowance)
            pending = Pending(
                question,
                request,
                reservation,
                context.conversation.id,
                _asked(question, images=len(images), now=self.clock()),
                prompt.estimated_tokens,
                cap=cut,
                response=self._response(question, request, tools, allowance),
            )
            if question.defer:
                await self._defer(pending, audience.platform)
            else:
                await self.answers.stream(pending, audience)

    async def _hold(
        self, question: Question, prompt: Prompt, caller: Caller, tools: Tools
    ) -> tuple[Reservation, Allowance, Cap | None]:
        """The quota hold of an answer: its whole allowance (text, reasoning, tool calls) where the
        budget covers it, else the allowance the budget buys; and the limit that cut it, if one did."""
        model = question.model
        prices = self.grok.prices.token_prices(model, prompt_tokens=prompt.estimated_tokens)
        plain = full_allowance(model, question.reasoning)
        full = plain
        if tools:
            ticks = tool_allowance(self.grok.prices, model, tools, prompt.estimated_tokens)
            full = plain.with_tools(ticks, out_price=prices.completion)
        ask = answer_ask(model, prices, prompt_tokens=prompt.estimated_tokens, allowance=full)
        reservation = await self.quotas.reserve_up_to(caller.payer, ask, is_admin=caller.is_exempt)
        takes_effort = self.grok.takes_reasoning_effort(model)
        allowance = full.within(reservation.units, model=model, takes_effort=takes_effort)
        if tools and not self._tool_calls(question, tools, allowance):
            # Not one tool call fits what the budget bought: the answer gets it all, without tools.
            allowance = plain.within(reservation.units, model=model, takes_effort=takes_effort)
        # A "length" finish is the budget's doing only where the budget cut the text.
        return reservation, allowance, reservation.cap if allowance.answer < plain.answer else None

    def _placed(self, question: Question, place: PlaceSettings) -> Question:
        """The question with its model: asked for, else the reasoning model when it asks for
        reasoning, else the place's default model, else the bot's."""
        if question.model:
            return question
        settings = self.settings
        model = (
            settings.grokbot_reasoning_model if question.reasoning else place.model or settings.grokbot_model
        )
        return replace(question, model=model)

    def _tools(self, question: Question, place: PlaceSettings) -> Tools:
        """The server-side tools of the answer: as the place allows and the question asks, on
        the Responses API only (Chat Completions and deferred answers have none)."""
        if question.defer or not self.upstream.responses:
            if question.search in ("web", "x"):
                why = "deferred answers" if question.defer else "this bot's xAI endpoint"
                raise BadInput(f"Live search is not available for {why}; ask without `search`.")
            return Tools()
        return tools_for(place, question.search)

    def _response(
        self, question: Question, request: ChatRequest, tools: Tools, allowance: Allowance
    ) -> ResponseRequest | None:
        """The answer's request on the Responses API, where it goes there: its output limit covers
        the reasoning too (Chat Completions' max_tokens does not), and its turns the tool calls the
        hold covers (none where the budget cut them away)."""
        if question.defer or not self.upstream.responses:
            return None
        calls = self._tool_calls(question, tools, allowance)
        output = allowance.answer + allowance.reasoning
        response = ResponseRequest.of(request, tools=tools if calls else Tools(), max_output_tokens=output)
        return replace(response, max_turns=calls) if calls else response

    def _tool_calls(self, question: Question, tools: Tools, allowance: Allowance) -> int:
        """How many tool calls the answer's hold covers, at most MAX_TOOL_CALLS."""
        if not tools or not allowance.tools:
            return 0
        prices = self.grok.prices
        one = prices.tool_allowance_ticks(question.model, tools, max_calls=1, prompt_tokens=0)
        out = prices.token_prices(question.model, prompt_tokens=0).completion
        return min(MAX_TOOL_CALLS, allowance.tool_ticks(out) // max(1, one))

    def _prompt(
        self, question: Question, context: store.TurnContext, images: list[ImagePart], *, platform: str
    ) -> Prompt:
        system = context.settings.system_prompt or DEFAULT_SYSTEM_PROMPT.format(platform=platform.title())
        return build_prompt(
            system=system,
            history=context.history,
            user_name=question.incoming.author.name,
            user_text=question.prompt,
            images=images,
            context_window=self.grok.prices.context_window(question.model),
            answer_budget=_budget(question),
        )

    @staticmethod
    def _request(question: Question, prompt: Prompt, conv_id: str, allowance: Allowance) -> ChatRequest:
        return ChatRequest(
            model=question.model,
            messages=prompt.messages,
            max_tokens=allowance.answer,
            reasoning_effort=allowance.effort,
            user=user_hash(question.place.platform, question.incoming.author.id),
            conv_id=conv_id,
        )

    async def _defer(self, pending: Pending, platform: Platform) -> None:
        question, reservation = pending.question, pending.reservation
        if self.deferrals is None:
            await self.quotas.release(reservation)
            raise BadInput("Deferred answers are not available on this instance; ask without defer.")
        try:
            await self.deferrals.submit(
                place=question.place,
                user_id=question.incoming.author.id,
                request=pending.request,
                reservation=reservation,
                conversation_id=pending.conversation_id,
            )
        except BaseException:
            await self.quotas.release(reservation)
            raise
        await store.add_turns(self.sessions, pending.conversation_id, [pending.asked], now=self.clock())
        told = deferred_accepted(pending.cap, zone=self.settings.zone, now=self.clock())
        await platform.post_text(question.incoming.place, told)


def _budget(question: Question) -> int:
    """Tokens the answer may take: its text, and the reasoning the model may do first."""
    return full_allowance(question.model, question.reasoning).total


def _asked(question: Question, *, images: int, now: datetime) -> store.HistoryMessage:
    """The question as the conversation's history keeps it."""
    author = question.incoming.author
    return store.HistoryMessage(
        role="user",
        text=question.prompt,
        author_id=author.id,
        author_name=author.name,
        image_count=images,
        created_at=now,
    )
