"""The conversation engine: every Incoming goes through `Engine.handle`, which runs the command or the
conversation turn and is the one place where errors become text for users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from bot import commands, store
from bot.conversation import DEFAULT_SYSTEM_PROMPT, build_prompt, estimate_tokens
from bot.db import Sessions
from bot.errors import (
    AnswerStopped,
    BadInput,
    BotError,
    GrokRejected,
    PlatformError,
)
from bot.grok import (
    MAX_IMAGE_BYTES,
    ChatRequest,
    Completion,
    ContentDelta,
    Gathering,
    GrokClient,
    ImagePart,
    ReasoningDelta,
    StreamEnd,
    StreamEvent,
    Usage,
    image_part,
    user_hash,
)
from bot.jobs import Deferrals
from bot.platform import Command, Feedback, Incoming, Place, Platform, Reply, ShowsReasoning
from bot.quotas import Charge, Quotas, Reservation, Subject
from bot.settings import Settings
from bot.streaming import EditBudgets, StreamWriter
from bot.wording import describe

log = logging.getLogger(__name__)

ANSWER_TOKENS = 4096
# Reasoning tokens are billed like output but not capped by max_completion_tokens: reserve for them.
REASONING_ALLOWANCE = {"low": 4_000, "high": 16_000}
# Most current Grok models reason even when not asked to (grok-4*, grok-3-mini, grok-code-fast):
# reserve for that too, or concurrent requests could settle far past a limit.
DEFAULT_REASONING_ALLOWANCE = 8_000
NON_REASONING = ("non-reasoning", "grok-3", "grok-2")
THINKING_TICK_S = 2.0
FEEDBACK_VALUES = ("good", "bad")
WORD_COMMANDS = frozenset({"reset", "help", "usage"})  # a message of just this word runs it
CACHE_SIZE = 10_000  # conversations and system prompts remembered per process
SYSTEM_PROMPT_TTL_S = 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def reasoning_allowance(model: str, effort: str | None) -> int:
    """Tokens to reserve for reasoning, which max_completion_tokens does not cap."""
    if effort is not None:
        return REASONING_ALLOWANCE[effort]
    if "non-reasoning" in model or (model.startswith(NON_REASONING[1:]) and "mini" not in model):
        return 0
    return DEFAULT_REASONING_ALLOWANCE


@dataclass(frozen=True)
class Turn:
    """What one conversation turn needs, resolved from an Incoming."""

    incoming: Incoming
    place: Place  # the conversation's place (may differ from where the message was posted)
    prompt: str
    model: str
    reasoning: str | None
    defer: bool


@dataclass
class Pending:
    """A turn on its way to the model: everything needed to answer, charge and record it."""

    turn: Turn
    request: ChatRequest
    reservation: Reservation
    conversation_id: int
    user_turn: store.TurnRecord
    prompt_tokens: int  # our estimate, used when the API reports no usage
    # The latest reasoning pieces; joined only when the thinking status is shown.
    reasoning: deque[str] = field(default_factory=lambda: deque(maxlen=64))


class Engine:
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
        self.monotonic = monotonic
        self.deferrals = deferrals
        self.digests = digests
        self.budgets = EditBudgets(clock=monotonic)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._conversations: dict[str, store.ConversationRef] = {}
        self._system_prompts: dict[str, tuple[float, str | None]] = {}

    # -- entry points -------------------------------------------------------------------------

    async def handle(self, incoming: Incoming, platform: Platform) -> bool:
        """Answer one message or command from a person. Never raises: failures are told to them.
        False when the delivery was a repeat of one already answered (`Incoming.deduplicate`)."""
        async with self._telling(platform, incoming.place, incoming.author.id):
            if incoming.deduplicate and incoming.event_id and not await self._first_delivery(incoming):
                return False
            await self._route(incoming, platform)
        return True

    async def feedback(self, feedback: Feedback, platform: Platform) -> None:
        """Record a person's feedback on an answer. Never raises: failures are told to them."""
        async with self._telling(platform, feedback.place, feedback.user_id):
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

    @contextlib.asynccontextmanager
    async def _telling(self, platform: Platform, place: Place, user_id: str) -> AsyncIterator[None]:
        """The one catch site: an expected error is worded for the person (privately where the
        platform can); anything else is logged with a traceback and they get an id to quote."""
        try:
            yield
        except BotError as exc:
            await self._tell(platform, place, user_id, self.describe(exc))
        except Exception:
            error_id = uuid.uuid4().hex[:8]
            log.exception("unexpected error %s in %s", error_id, place.key)
            await self._tell(
                platform,
                place,
                user_id,
                f"Sorry, something went wrong on my side. If it keeps happening, tell an admin "
                f"the error id `{error_id}`.",
            )

    async def _first_delivery(self, incoming: Incoming) -> bool:
        """True the first time this platform delivery id is seen, on any instance."""
        return await store.claim_event(
            self.sessions, platform=incoming.place.platform, event_id=incoming.event_id, now=self.clock()
        )

    def is_admin(self, incoming: Incoming) -> bool:
        """May run admin commands: GROKBOT_ADMINS, or an admin the platform vouches for."""
        return incoming.author.is_admin or self.settings.is_admin(incoming.place.platform, incoming.author.id)

    @staticmethod
    def payer(incoming: Incoming) -> Subject:
        """Whose quota a request from `incoming` draws on: its author, in its workspace."""
        return Subject(incoming.place.platform, incoming.place.workspace, incoming.author.id)

    def is_exempt(self, incoming: Incoming) -> bool:
        """Spends without limits: only the operator's GROKBOT_ADMINS. A server's own admins are not
        exempt, since anyone can make a server and invite the bot to it."""
        return self.settings.is_admin(incoming.place.platform, incoming.author.id)

    def describe(self, exc: BotError) -> str:
        """The user-facing text for an error: what happened and what the user can do."""
        if isinstance(exc, GrokRejected):
            log.warning("xAI rejected a request (HTTP %s): %s", exc.status, exc)  # the key is redacted
        return describe(exc, zone=self.settings.zone, now=self.clock())

    async def _tell(self, platform: Platform, place: Place, user_id: str, text: str) -> None:
        try:
            await platform.post_text(place, text, private_to=user_id)
        except PlatformError:
            log.warning("could not tell the user in %s what happened", place.key)

    async def _route(self, incoming: Incoming, platform: Platform) -> None:
        command = incoming.command
        word = incoming.text.strip().strip("!.?").lower()
        # "@Grok reset" in a thread: slash commands carry no thread, so a mention or a message that
        # is just a command word runs it where it was said.
        if (
            command is None
            and word in WORD_COMMANDS
            and (incoming.addressed or await self.conversation_place(incoming) is not None)
        ):
            command = Command(name=word)
            incoming = replace(incoming, command=command)
        if command is not None and command.error:
            raise BadInput(command.error)
        if command is None or command.name == "ask":
            turn = await self._resolve_turn(incoming)
            if turn is not None:
                await self._converse(turn, platform)
            return
        handler = commands.HANDLERS.get(command.name)
        if handler is None:
            raise BadInput(f"Unknown command `{command.name}`. {commands.COMMAND_LIST}")
        await handler(self, incoming, platform)

    # -- conversations ------------------------------------------------------------------------

    async def conversation_place(self, incoming: Incoming) -> Place | None:
        """Where this message's conversation lives, or None when the bot should stay silent."""
        if incoming.reply_to:
            ref = await store.conversation_of_message(
                self.sessions,
                platform=incoming.place.platform,
                channel=incoming.place.channel,
                message_id=incoming.reply_to,
            )
            if ref is not None:
                return ref.place
        place = incoming.place
        if incoming.command is not None and not place.thread:
            # Slash-command questions continue the caller's own conversation in the channel.
            return place.in_thread(f"user:{incoming.author.id}")
        if not incoming.addressed and await store.find_conversation(self.sessions, place) is None:
            return None
        return place

    async def _resolve_turn(self, incoming: Incoming) -> Turn | None:
        options = dict(incoming.command.options) if incoming.command else {}
        prompt = incoming.command.text if incoming.command else incoming.text
        unknown = set(options) - {"model", "reasoning", "defer", "prompt"}
        if unknown:
            raise BadInput(
                f"`ask` has no option `{sorted(unknown)[0]}`. It accepts model:<name>, "
                "reasoning:low|high and defer:true|false before the question."
            )
        prompt = (options.pop("prompt", "") + " " + prompt).strip()
        reasoning = options.get("reasoning", "").lower() or None
        if reasoning not in (None, "low", "high"):
            raise BadInput("reasoning accepts `low` or `high`.")
        defer = commands.parse_bool(options.get("defer", "false"), name="defer")
        place = await self.conversation_place(incoming)
        if place is None:
            return None
        if not prompt and not incoming.attachments:
            raise BadInput("Ask me something: write a question after the command or the mention.")
        default = self.settings.grokbot_reasoning_model if reasoning else self.settings.grokbot_model
        model = options.get("model") or default
        return Turn(incoming, place, prompt, model, reasoning, defer)

    async def _conversation(self, place: Place) -> store.ConversationRef:
        """The conversation at `place`; rows are never deleted, so a found one is cached."""
        ref = self._conversations.get(place.key)
        if ref is None:
            ref = await store.conversation_for(self.sessions, place, now=self.clock())
            if len(self._conversations) >= CACHE_SIZE:
                self._conversations.pop(next(iter(self._conversations)))
            self._conversations[place.key] = ref
        return ref

    async def _system_prompt(self, place: Place) -> str | None:
        """The channel's system prompt (else the workspace's), re-read at most once a minute. Kept
        per channel, not per thread: every new thread in a channel would otherwise read it again."""
        key = f"{place.platform}:{place.workspace}:{place.channel}"
        cached = self._system_prompts.get(key)
        if cached is not None and self.monotonic() - cached[0] < SYSTEM_PROMPT_TTL_S:
            return cached[1]
        prompt = await store.system_prompt_for(self.sessions, place)
        if len(self._system_prompts) >= CACHE_SIZE:
            self._system_prompts.pop(next(iter(self._system_prompts)))
        self._system_prompts[key] = (self.monotonic(), prompt)
        return prompt

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

    async def _converse(self, turn: Turn, platform: Platform) -> None:
        incoming = turn.incoming
        images = await self._image_parts(incoming, platform)
        subject = self.payer(incoming)
        async with self._lock(turn.place.key):
            now = self.clock()
            conversation = await self._conversation(turn.place)
            history = await store.recent_turns(self.sessions, conversation.id)
            system = await self._system_prompt(turn.place)
            prompt = build_prompt(
                system=system or DEFAULT_SYSTEM_PROMPT.format(platform=platform.name.title()),
                history=history,
                user_name=incoming.author.name,
                user_text=turn.prompt,
                images=images,
                context_window=self.grok.prices.context_window(turn.model),
                answer_budget=ANSWER_TOKENS + reasoning_allowance(turn.model, turn.reasoning),
            )
            request = ChatRequest(
                model=turn.model,
                messages=prompt.messages,
                max_tokens=ANSWER_TOKENS,
                reasoning_effort=turn.reasoning,
                user=user_hash(turn.place.platform, incoming.author.id),
                conv_id=conversation.grok_conv_id,
            )
            estimate = self.grok.prices.estimate_ticks(
                turn.model,
                prompt_tokens=prompt.estimated_tokens,
                max_completion_tokens=ANSWER_TOKENS + reasoning_allowance(turn.model, turn.reasoning),
            )
            reservation = await self.quotas.reserve(
                subject, ticks=estimate, is_admin=self.is_exempt(incoming)
            )
            user_turn = store.TurnRecord(
                role="user",
                text=turn.prompt,
                author_id=incoming.author.id,
                author_name=incoming.author.name,
                image_count=len(images),
                created_at=now,
            )
            pending = Pending(turn, request, reservation, conversation.id, user_turn, prompt.estimated_tokens)
            if turn.defer:
                await self._defer(pending, platform)
            else:
                await self._stream_answer(pending, platform)

    async def _defer(self, pending: Pending, platform: Platform) -> None:
        turn, reservation = pending.turn, pending.reservation
        if self.deferrals is None:
            await self.quotas.release(reservation)
            raise BadInput("Deferred answers are not available on this instance; ask without defer.")
        try:
            await self.deferrals.submit(
                place=turn.place,
                user_id=turn.incoming.author.id,
                request=pending.request,
                reservation=reservation,
                conversation_id=pending.conversation_id,
            )
        except BaseException:
            await self.quotas.release(reservation)
            raise
        await store.add_turns(self.sessions, pending.conversation_id, [pending.user_turn], now=self.clock())
        await platform.post_text(
            turn.incoming.place,
            "⏳ Your question went to Grok as a deferred request. I'll post the answer here when "
            "it is ready (usually within a few minutes).",
        )

    async def _stream_answer(self, pending: Pending, platform: Platform) -> None:
        turn, incoming = pending.turn, pending.turn.incoming
        gathering = Gathering()
        writer = StreamWriter(
            platform,
            incoming.place,
            budgets=self.budgets,
            reply_to=incoming.message_id,
            interval=self.settings.grokbot_edit_interval_s,
            clock=self.monotonic,
            before_edit=gathering.flush,  # each edit shows what the connection holds
        )
        completion: Completion | None = None
        try:
            # Closed only after the final edit: closing reads the response to its end, so that
            # its connection is reused, and that must not hold the last words back.
            async with contextlib.aclosing(self.grok.stream(pending.request, gathering=gathering)) as events:
                await writer.open()
                completion = await self._pump(writer, pending, events)
                await writer.finish()
        except AnswerStopped:
            await self._record_stopped(pending, completion, writer)
            return
        except BotError as exc:
            # Nothing complete was delivered: refund the whole reservation.
            await self.quotas.release(pending.reservation)
            log.info("answer failed in %s: %s", turn.place.key, type(exc).__name__)
            await writer.fail(self.describe(exc))
            if writer.text:
                # Keep what was shown in the history, so the conversation matches the chat.
                partial = store.TurnRecord(role="assistant", text=writer.text, finish_reason="error")
                await store.add_turns(
                    self.sessions, pending.conversation_id, [pending.user_turn, partial], now=self.clock()
                )
            return
        except BaseException:
            await self.quotas.release(pending.reservation)
            raise
        try:
            await self._record_answer(pending, completion, writer)
        except (SQLAlchemyError, OSError):
            # The user already has the whole answer: no apology. The hold is swept later.
            log.exception("could not record a delivered answer in %s", turn.place.key)
        if completion.reasoning and isinstance(platform, ShowsReasoning):
            await platform.show_reasoning(incoming.place, completion.reasoning)

    async def _pump(
        self, writer: StreamWriter, pending: Pending, events: AsyncIterator[StreamEvent]
    ) -> Completion:
        """Feed the model's stream into the writer; show thinking until the answer starts."""
        thinking = pending.turn.reasoning is not None
        started = self.monotonic()
        await writer.status("💭 Thinking…" if thinking else "✍️ Writing…")
        ticker = asyncio.create_task(self._think(writer, pending, started)) if thinking else None
        answering = False
        try:
            async for event in events:
                if writer.stopped:  # closing the stream stops the generation upstream
                    raise AnswerStopped("the answer was stopped in the chat")
                if type(event) is ContentDelta:
                    if not answering:
                        answering = True
                        if ticker is not None:
                            ticker.cancel()
                            seconds = self.monotonic() - started
                            writer.set_prefix(f"_Thought for {seconds:.0f} s._\n\n")
                    writer.append(event.text)
                elif type(event) is ReasoningDelta:
                    pending.reasoning.append(event.text)
                elif isinstance(event, StreamEnd):
                    return event.completion
        finally:
            if ticker is not None:
                ticker.cancel()
        raise BadInput("The answer stream ended without a result.")  # unreachable by the client's contract

    async def _think(self, writer: StreamWriter, pending: Pending, started: float) -> None:
        """While the model reasons: show for how long, and the latest line of its reasoning if exposed."""
        while True:
            await asyncio.sleep(THINKING_TICK_S)
            seconds = self.monotonic() - started
            tail = "".join(pending.reasoning)[-160:].strip().rsplit("\n", 1)[-1][-120:]
            line = f"💭 Thinking… {seconds:.0f} s"
            await writer.status(f"{line}\n> {tail}" if tail else line)

    async def _record_answer(self, pending: Pending, completion: Completion, writer: StreamWriter) -> None:
        usage = completion.usage or Usage(
            prompt_tokens=pending.prompt_tokens, completion_tokens=estimate_tokens(completion.text)
        )
        model = completion.model or pending.turn.model
        cost = await self._settle_chat(pending, usage, model=model, request_id=completion.id)
        answer = store.assistant_turn(completion, model=pending.turn.model, usage=usage, cost_ticks=cost)
        await self._add_answer_turns(pending, answer, writer)

    async def _record_stopped(
        self, pending: Pending, completion: Completion | None, writer: StreamWriter
    ) -> None:
        """The person stopped the answer in the chat: nothing more is shown. What Grok generated
        until then is billed by xAI, so it is charged (never the whole estimate), and the history
        keeps what the chat showed."""
        turn = pending.turn
        log.info("answer stopped in the chat in %s", turn.place.key)
        usage = completion.usage if completion is not None else None
        if completion is None or usage is None:  # stopped mid-stream: estimate what was generated
            usage = Usage(
                prompt_tokens=pending.prompt_tokens,
                completion_tokens=estimate_tokens(writer.text),
                reasoning_tokens=estimate_tokens("".join(pending.reasoning)),
            )
            completion = Completion("", turn.model, writer.text, "".join(pending.reasoning), "", usage, "")
        shown = replace(completion, text=writer.shown_text, finish_reason="stopped")
        try:
            model = completion.model or turn.model
            cost = await self._settle_chat(pending, usage, model=model, request_id=completion.id)
            answer = store.assistant_turn(shown, model=turn.model, usage=usage, cost_ticks=cost)
            await self._add_answer_turns(pending, answer, writer)
        except (SQLAlchemyError, OSError):
            log.exception("could not record a stopped answer in %s", turn.place.key)

    async def _settle_chat(self, pending: Pending, usage: Usage, *, model: str, request_id: str) -> int:
        """Settle the turn's reservation with what `usage` costs; the cost in ticks."""
        turn = pending.turn
        cost = self.grok.prices.cost_ticks(model, usage)
        await self.quotas.settle(
            pending.reservation,
            Charge(
                kind="chat",
                model=model,
                cost_ticks=cost,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                cached_tokens=usage.cached_tokens,
                xai_request_id=request_id,
                conversation_key=turn.place.key,
                idempotency_key=self._idempotency_key("chat", turn.incoming),
            ),
        )
        return cost

    async def _add_answer_turns(
        self, pending: Pending, answer: store.TurnRecord, writer: StreamWriter
    ) -> None:
        incoming = pending.turn.incoming
        links = store.Links(
            incoming.place.platform, incoming.place.channel, (incoming.message_id, *writer.message_ids)
        )
        await store.add_turns(
            self.sessions, pending.conversation_id, [pending.user_turn, answer], now=self.clock(), links=links
        )

    # -- images -------------------------------------------------------------------------------

    async def imagine(self, incoming: Incoming, platform: Platform, *, prompt: str, count: int) -> None:
        """Generate images, post them as files with the revised prompt, charge per image.

        Every path after the reservation either settles it (the images reached the chat) or
        releases it, and the reply always ends with the images or with what went wrong."""
        model = self.settings.grokbot_image_model
        subject = self.payer(incoming)
        price = self.grok.prices.image_ticks(model, count)
        reservation = await self.quotas.reserve(
            subject, ticks=price, images=count, is_admin=self.is_exempt(incoming)
        )
        reply: Reply | None = None
        try:
            reply = await platform.start_reply(incoming.place, reply_to=incoming.message_id)
            await reply.status(f"🎨 Generating {count} image{'s' if count > 1 else ''}…")
            user = user_hash(incoming.place.platform, incoming.author.id)
            result = await self.grok.generate_images(model=model, prompt=prompt, n=count, user=user)
            images = commands.fit_images(result.images, limit=platform.capabilities.max_upload_bytes)
            caption = commands.image_caption(prompt, images)
            try:
                await reply.finish(caption, images=images)
            except PlatformError:
                # The images are paid for: try once more as a plain upload before giving up.
                await platform.post_images(incoming.place, images, text=caption)
        except BaseException as exc:
            await self.quotas.release(reservation)
            if isinstance(exc, BotError) and reply is not None:
                await reply.fail(self.describe(exc))
                return
            raise
        await self.quotas.settle(
            reservation,
            Charge(
                kind="image",
                model=result.model or model,
                cost_ticks=result.cost_ticks if result.cost_ticks is not None else price,
                images=len(result.images),
                idempotency_key=self._idempotency_key("image", incoming),
                conversation_key=incoming.place.key,
            ),
        )

    @staticmethod
    def _idempotency_key(kind: str, incoming: Incoming) -> str:
        """Unique per platform delivery (a redelivered event cannot charge twice)."""
        event = incoming.event_id or incoming.message_id or uuid.uuid4().hex
        return f"{kind}:{incoming.place.platform}:{incoming.place.workspace}:{event}"[:160]
