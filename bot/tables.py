"""SQLModel tables: what grokbot keeps. Rows never leave the storage modules (bot.store, bot.quotas,
bot.jobs, bot.digests, bot.admin).

Money and counters are BIGINT ticks (1 USD = 10^10 ticks): a 32-bit INTEGER on PostgreSQL would
overflow at about $0.21. Times are aware UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Constraint names must be stable from the first migration on: SQLite's batch mode needs them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Core Table (for statements built once, with bound parameters)."""
    return model.metadata.tables[str(model.__tablename__)]


def _ticks(default: int = 0) -> int:
    return Field(default=default, sa_type=BigInteger, nullable=False)  # type: ignore[no-any-return]


class Conversation(SQLModel, table=True):
    """A conversation, addressed by its place: (platform, workspace, channel, thread)."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "thread"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    thread: str = Field(max_length=128)
    grok_conv_id: str = Field(max_length=36)  # x-grok-conv-id: raises prompt-cache hits
    created_at: datetime
    updated_at: datetime


class Turn(SQLModel, table=True):
    """One message of a conversation: the user's, or the assistant's with its usage and cost."""

    __tablename__ = "turn"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=16)  # user | assistant | system
    author_id: str = Field(default="", max_length=64)
    author_name: str = Field(default="", max_length=128)
    text: str = Field(sa_type=Text)
    image_count: int = 0
    model: str = Field(default="", max_length=64)
    fingerprint: str = Field(default="", max_length=64)
    xai_request_id: str = Field(default="", max_length=128)
    prompt_tokens: int = Field(default=0, sa_type=BigInteger)
    completion_tokens: int = Field(default=0, sa_type=BigInteger)
    reasoning_tokens: int = Field(default=0, sa_type=BigInteger)
    cached_tokens: int = Field(default=0, sa_type=BigInteger)
    cost_ticks: int = _ticks()
    finish_reason: str = Field(default="", max_length=32)
    # The answer's sources, as JSON [{"url", "title"}] (None: it had none). Encrypted reasoning
    # is never kept, here or anywhere.
    sources: str | None = Field(default=None, sa_type=Text)
    created_at: datetime


class MessageRef(SQLModel, table=True):
    """A platform message that belongs to a conversation (so a reply to it continues that one)."""

    __tablename__ = "message_ref"
    __table_args__ = (UniqueConstraint("platform", "channel", "message_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    channel: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE", index=True)
    created_at: datetime


class PlaceSetting(SQLModel, table=True):
    """Per workspace (channel "") or per channel settings: the system prompt, the default model,
    the search tools ("web,x,code" or "none") and their filters. None: not set here."""

    __tablename__ = "place_setting"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(default="", max_length=64)
    system_prompt: str | None = Field(default=None, sa_type=Text)
    model: str | None = Field(default=None, max_length=64)
    tools: str | None = Field(default=None, max_length=32)
    # Web search's domains: "a.com,b.org" allowed only, "-a.com,-b.org" excluded, "none": no filter.
    search_domains: str | None = Field(default=None, max_length=400)
    x_handles: str | None = Field(default=None, max_length=400)  # "xai,elonmusk", or "none"
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime


class UsageEvent(SQLModel, table=True):
    """The append-only ledger: one row per charge. Reports read it; enforcement does not."""

    __tablename__ = "usage_event"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=160, unique=True)
    platform: str = Field(max_length=16, index=True)
    workspace: str = Field(max_length=64)
    user_id: str = Field(max_length=64, index=True)
    conversation_key: str = Field(default="", max_length=300)
    model: str = Field(default="", max_length=64)
    kind: str = Field(max_length=16)  # chat | image | deferred | digest
    prompt_tokens: int = Field(default=0, sa_type=BigInteger)
    completion_tokens: int = Field(default=0, sa_type=BigInteger)
    reasoning_tokens: int = Field(default=0, sa_type=BigInteger)
    cached_tokens: int = Field(default=0, sa_type=BigInteger)
    images: int = 0
    cost_ticks: int = _ticks()
    # Server-side tool calls (web and X searches, code runs) and their part of cost_ticks.
    tool_calls: int = 0
    tool_cost_ticks: int = _ticks()
    xai_request_id: str = Field(default="", max_length=128)
    created_at: datetime = Field(index=True)


class QuotaCounter(SQLModel, table=True):
    """Spend (ticks) or images used by one subject in one period. A new period is a new row."""

    __tablename__ = "quota_counter"
    __table_args__ = (UniqueConstraint("subject", "period_key"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=200)  # e.g. user:discord:<guild>:<user>, images:..., workspace:...
    period_key: str = Field(max_length=16)  # 2026-11-26 | 2026-11 | all
    used: int = _ticks()
    limit: int = _ticks()  # 0 = unlimited
    updated_at: datetime


class QuotaReservation(SQLModel, table=True):
    """An estimate held against counters until the real cost settles it (or a sweeper frees it)."""

    __tablename__ = "quota_reservation"

    id: int | None = Field(default=None, primary_key=True)
    counters: str = Field(sa_type=Text)  # JSON list of [subject, period_key, amount]
    state: str = Field(default="held", max_length=16, index=True)  # held | settled | released
    created_at: datetime
    closed_at: datetime | None = None


class QuotaOverride(SQLModel, table=True):
    """Per-user limits set by an admin; None means the default from settings."""

    __tablename__ = "quota_override"
    __table_args__ = (UniqueConstraint("platform", "workspace", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    daily_ticks: int | None = Field(default=None, sa_type=BigInteger)
    monthly_ticks: int | None = Field(default=None, sa_type=BigInteger)
    daily_images: int | None = None
    set_by: str = Field(default="", max_length=64)
    updated_at: datetime


class DeferredRequest(SQLModel, table=True):
    """A deferred xAI completion: where to deliver it, and the lease of whoever polls it."""

    __tablename__ = "deferred_request"
    __table_args__ = (Index("ix_deferred_request_due", "status", "next_poll_at"),)

    id: int | None = Field(default=None, primary_key=True)
    xai_request_id: str = Field(max_length=128, unique=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    thread: str = Field(default="", max_length=128)
    user_id: str = Field(max_length=64)
    conversation_id: int | None = Field(default=None, sa_type=BigInteger)
    model: str = Field(max_length=64)
    reservation_id: int | None = Field(default=None, sa_type=BigInteger)
    status: str = Field(default="pending", max_length=16)  # a bot.jobs.state.Status
    attempts: int = 0
    next_poll_at: datetime
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    result_json: str | None = Field(default=None, sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime
    expires_at: datetime
    delivered_at: datetime | None = None


class DigestSchedule(SQLModel, table=True):
    """A channel digest on a user-set schedule (5-field cron, Unix day-of-week, in `timezone`)."""

    __tablename__ = "digest_schedule"

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)  # the channel summarised
    post_channel: str = Field(max_length=64)  # where the digest is posted
    cron_expr: str = Field(max_length=120)
    timezone: str = Field(max_length=64)
    enabled: bool = True
    post_when_empty: bool = True
    next_run_at: datetime = Field(index=True)
    last_run_at: datetime | None = None  # the end of the last summarised period
    created_by: str = Field(max_length=64)
    created_at: datetime


class DigestRun(SQLModel, table=True):
    """One run of a digest for one slot; the unique slot key stops double posting."""

    __tablename__ = "digest_run"
    __table_args__ = (UniqueConstraint("digest_id", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest_schedule.id", ondelete="CASCADE", index=True)
    slot: datetime
    status: str = Field(default="running", max_length=16)  # running|posted|empty|failed
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    message_count: int = 0
    cost_ticks: int = _ticks()
    error: str | None = Field(default=None, sa_type=Text)
    started_at: datetime
    finished_at: datetime | None = None


class ProcessedEvent(SQLModel, table=True):
    """Platform event ids already handled (Slack retries, gateway replays): insert-or-skip."""

    __tablename__ = "processed_event"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_id: str = Field(max_length=128)
    received_at: datetime = Field(index=True)


class Feedback(SQLModel, table=True):
    """A thumbs up or down on one of the bot's answers."""

    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    message_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    value: str = Field(max_length=32)
    created_at: datetime


class Heartbeat(SQLModel, table=True):
    """The last sign of life of a process's parts (scheduler, gateway), read by /readyz."""

    __tablename__ = "heartbeat"
    __table_args__ = (UniqueConstraint("instance", "component"),)

    id: int | None = Field(default=None, primary_key=True)
    instance: str = Field(max_length=64)
    component: str = Field(max_length=32)
    beat_at: datetime


class OpenAnswer(SQLModel, table=True):
    """An answer being written now by process `instance`, with where it shows: the message being
    written and its native stream, if any. Inserted when its first message exists, deleted when it
    ends; a row whose process died is an answer left in progress, closed by the next process."""

    __tablename__ = "open_answer"

    id: int | None = Field(default=None, primary_key=True)
    instance: str = Field(max_length=64, index=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    thread: str = Field(default="", max_length=64)
    message_id: str = Field(max_length=64)
    stream: str = Field(default="", max_length=64)  # a native stream's id (Slack: its ts)
    started_at: datetime


# -- the admin pages (bot/admin) -------------------------------------------------------------------


class AdminSignIn(SQLModel, table=True):
    """A one-time sign-in link handed to an admin in the chat. Only its token's SHA-256 is kept."""

    __tablename__ = "admin_sign_in"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    workspace: str = Field(default="", max_length=64)  # "" = every workspace (GROKBOT_ADMINS)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class AdminSession(SQLModel, table=True):
    """A signed-in admin's browser session. Only its cookie token's SHA-256 is kept."""

    __tablename__ = "admin_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=64)
    workspace: str = Field(default="", max_length=64)  # "" = every workspace (GROKBOT_ADMINS)
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None


class AdminAlert(SQLModel, table=True):
    """When admins were last told of one kind of trouble; claimed by compare-and-set, so that
    several instances send one message."""

    __tablename__ = "admin_alert"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32, unique=True)
    sent_at: datetime


class XaiSignal(SQLModel, table=True):
    """xAI's refusals counted per UTC hour: "credits" (no credits, spending limit), "rate_limited"."""

    __tablename__ = "xai_signal"
    __table_args__ = (UniqueConstraint("kind", "hour"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    hour: datetime
    count: int = _ticks()
    last_at: datetime


# The admin pages sum the ledger per day by kind, by model and by workspace with one index range
# per value and day: covering indexes, so a million rows are summed without touching the table.
# The kind index also covers the tool spend, which the overview shows as its own series.
_LEDGER = table_of(UsageEvent)
Index(
    "ix_usage_event_kind_time",
    _LEDGER.c.kind,
    _LEDGER.c.created_at,
    _LEDGER.c.cost_ticks,
    _LEDGER.c.tool_cost_ticks,
)
Index("ix_usage_event_model_time", _LEDGER.c.model, _LEDGER.c.created_at, _LEDGER.c.cost_ticks)
Index(
    "ix_usage_event_workspace_time",
    _LEDGER.c.platform,
    _LEDGER.c.workspace,
    _LEDGER.c.created_at,
    _LEDGER.c.cost_ticks,
)
# A user's recent requests show the fingerprint of the turn each one produced, and users their names.
Index("ix_turn_xai_request_id", table_of(Turn).c.xai_request_id)
Index("ix_turn_author_id", table_of(Turn).c.author_id)
