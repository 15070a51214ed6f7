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
from bot.images import ImageMaker
from bot.jobs import Deferrals
from bot.platform import Command, Feedback, Incoming, Place, Platform
from bot.quotas import Quotas
from bot.search import tools_for
from bot.settings import Settings
from bot.store import PlaceSettings
from bot.streaming import EditBudgets
from bot.telling import Audience, telling
from bot.upstream import Upstream

__all__ = ["ANSWER_TOKENS", "MAX_TOOL_CALLS", "Engine", "reasoning_allowance", "tool_allowance", "utc_now"]

ANSWER_TOKENS = 4096
# Reasoning tokens are billed like output but not capped by max_completion_tokens: reserve for them.
REASONING_ALLOWANCE = {"low": 4_000, "high": 16_000}
# Most current Grok models reason even when not asked to (grok-4*, grok-3-mini, grok-code-fast):
# reserve for that too, or concurrent requests could settle far past a limit.
DEFAULT_REASONING_ALLOWANCE = 8_000
NON_REASONING = ("non-reasoning", "grok-3", "grok-2")
FEEDBACK_VALUES = ("good", "bad")
# Grok's agent turns with server-side tools: sent as max_turns and reserved for as that many tool
# calls (parallel calls share a turn, so this bounds a typical answer, not the rarest one).
MAX_TOOL_CALLS = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def reasoning_allowance(model: str, effort: str | None) -> int:
    """Tokens to reserve for reasoning, which max_completion_tokens does not cap."""
    if effort is not None:
        return REASONING_ALLOWANCE[effort]
    if "non-reasoning" in model or (model.startswith(NON_REASONING[1:]) and "mini" not in model):
        return 0
    return DEFAULT_REASONING_ALLOWANCE


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
    ) -> None:
        self.settings = settings
        self.grok = grok
        self.sessions = sessions
        self.quotas = quotas
        self.clock = clock
        self.deferrals = deferrals
        self.digests = digests
        self.conversations = store.Conversations(sessions, clock=clock, monotonic=monotonic)
        self.images = ImageMaker(grok=grok, quotas=quotas, model=settings.grokbot_image_model)
        self.upstream = Upstream(grok, api=settings.grokbot_xai_api)
        self.answers = Answers(
            grok=grok,
            upstream=self.upstream,
            sessions=sessions,
            quotas=quotas,
            budgets=EditBudgets(clock=monotonic),
            edit_interval=settings.grokbot_edit_interval_s,
            clock=clock,
            monotonic=monotonic,
        )
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # -- entry points -------------------------------------------------------------------------

    async def handle(self, incoming: Incoming, platform: Platform) -> bool:
        """Answer one message or command from a person. Never raises: failures are told to them.
        False when the delivery was a repeat of one already answered (`Incoming.deduplicate`)."""
        async with self._telling(Audience(platform, incoming.place, incoming.author.id)) as audience:
            if incoming.deduplicate and incoming.event_id and not await self._first_delivery(incoming):
                return False
            await self._route(incoming, audience)
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

    async def _route(self, incoming: Incoming, audience: Audience) -> None:
        incoming = await self._word_command(incoming)
        command = incoming.command
        if command is not None and command.error:
            raise BadInput(command.error)
        if command is None or command.name == "ask":
            question = await self._question(incoming)
            if question is not None:
                await self._converse(question, audience)
            return
        handler = commands.HANDLERS.get(command.name)
        if handler is None:
            raise BadInput(f"Unknown command `{command.name}`. {commands.command_list()}")
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

    async def _converse(self, question: Question, audience: Audience) -> None:
        """One turn: the conversation's context, the prompt, the quota hold, then the answer."""
        images = await self._image_parts(question.incoming, audience.platform)
        caller = Caller.of(question.incoming, self.settings)
        async with self._lock(question.place.key):
            context = await self.conversations.turn_context(question.place)
            question = self._placed(question, context.settings)
            tools = self._tools(question, context.settings)
            prompt = self._prompt(question, context, images, platform=audience.platform.name)
            estimate = self.grok.prices.estimate_ticks(
                question.model, prompt_tokens=prompt.estimated_tokens, max_completion_tokens=_budget(question)
            )
            estimate += tool_allowance(self.grok.prices, question.model, tools, prompt.estimated_tokens)
            reservation = await self.quotas.reserve(caller.payer, ticks=estimate, is_admin=caller.is_exempt)
            request = self._request(question, prompt, context.conversation.grok_conv_id)
            pending = Pending(
                question,
                request,
                reservation,
                context.conversation.id,
                _asked(question, images=len(images), now=self.clock()),
                prompt.estimated_tokens,
                response=self._response(question, request, tools),
            )
            if question.defer:
                await self._defer(pending, audience.platform)
            else:
                await self.answers.stream(pending, audience)

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

    def _response(self, question: Question, request: ChatRequest, tools: Tools) -> ResponseRequest | None:
        """The answer's request on the Responses API, where it goes there: its output limit
        covers the reasoning too (Chat Completions' max_tokens does not)."""
        if question.defer or not self.upstream.responses:
            return None
        answer = request.max_tokens if request.max_tokens is not None else ANSWER_TOKENS
        output = answer + reasoning_allowance(question.model, question.reasoning)
        response = ResponseRequest.of(request, tools=tools, max_output_tokens=output)
        return replace(response, max_turns=MAX_TOOL_CALLS) if tools else response

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
    def _request(question: Question, prompt: Prompt, conv_id: str) -> ChatRequest:
        return ChatRequest(
            model=question.model,
            messages=prompt.messages,
            max_tokens=ANSWER_TOKENS,
            reasoning_effort=question.reasoning,
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
        await platform.post_text(
            question.incoming.place,
            "⏳ Your question went to Grok as a deferred request. I'll post the answer here when "
            "it is ready (usually within a few minutes).",
        )


def _budget(question: Question) -> int:
    """Tokens the answer may take: its text, and the reasoning the model may do first."""
    return ANSWER_TOKENS + reasoning_allowance(question.model, question.reasoning)


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
