"""The values quotas take and give: who pays, what a call may and did cost, limits, holds and
summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KINDS = frozenset({"chat", "image", "deferred", "digest"})
IMAGES = "images:"  # prefix of the subjects counted in images; every other counter is in ticks


@dataclass(frozen=True)
class Subject:
    """Who pays: a user of a workspace (guild, team), or the workspace itself when user_id is ""."""

    platform: str
    workspace: str
    user_id: str

    def __post_init__(self) -> None:
        # The ledger's column sizes; they also keep every counter subject under its 200 chars.
        if not 0 < len(self.platform) <= 16 or len(self.workspace) > 64 or len(self.user_id) > 64:
            raise ValueError(f"subject ids out of range: {self!r}")

    @property
    def spend_key(self) -> str:
        return f"user:{self.platform}:{self.workspace}:{self.user_id}"

    @property
    def images_key(self) -> str:
        return f"{IMAGES}{self.platform}:{self.workspace}:{self.user_id}"

    @property
    def workspace_key(self) -> str:
        return f"workspace:{self.platform}:{self.workspace}"


@dataclass(frozen=True)
class Limits:
    """Effective per-user limits; 0 means unlimited."""

    daily_ticks: int
    monthly_ticks: int
    daily_images: int


@dataclass(frozen=True, kw_only=True)
class Ask:
    """What a call may cost, for `Quotas.reserve_up_to`: `base_ticks` in any case, plus `units`
    units (output tokens, images) of `unit_ticks` and `unit_images` each. Where a limit allows
    fewer units, fewer are held, down to `least_units`; below that the call is refused."""

    unit_ticks: int
    units: int = 1
    least_units: int = 0  # 0: `units`, all or nothing
    base_ticks: int = 0
    unit_images: int = 0
    kind: str = ""  # what is asked for ("chat", "image"), so that a refusal can say so
    model: str = ""

    def __post_init__(self) -> None:
        if min(self.unit_ticks, self.base_ticks, self.unit_images, self.least_units) < 0:
            raise ValueError("a reservation is never negative")
        if self.units < 1 or self.least_units > self.units:
            raise ValueError(f"cannot ask for {self.least_units} to {self.units} units")

    @property
    def least(self) -> int:
        return self.least_units or self.units


@dataclass(frozen=True)
class Cap:
    """The limit that held a reservation below what was asked: the one a cut answer names."""

    limit: str  # "daily spend", "monthly spend", "daily images", "workspace monthly spend"
    limit_amount: int  # ticks, or images when unit == "images"
    unit: str
    resets_at: datetime


@dataclass(frozen=True)
class Reservation:
    """A held estimate. Only `id` and `subject` matter to settle/release, so it can be rebuilt.
    `units` were granted of those asked for; `cap` names the limit that granted fewer, if one did."""

    id: int
    subject: Subject
    ticks: int = 0
    images: int = 0
    units: int = 1
    cap: Cap | None = None


@dataclass(frozen=True, kw_only=True)
class Charge:
    """What one call really cost, as reported by xAI (`cost_in_usd_ticks`)."""

    kind: str
    model: str
    cost_ticks: int
    idempotency_key: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    images: int = 0
    xai_request_id: str = ""
    conversation_key: str = ""
    tool_calls: int = 0  # server-side tool calls (searches, code runs)
    tool_cost_ticks: int = 0  # their part of cost_ticks

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"charge kind {self.kind!r} is not one of {sorted(KINDS)}")
        if min(self.cost_ticks, self.images, self.tool_calls, self.tool_cost_ticks) < 0:
            raise ValueError("a charge is never negative")
        if self.tool_cost_ticks > self.cost_ticks:
            raise ValueError("a charge's tool cost is part of its cost")
        if not self.idempotency_key:
            raise ValueError("a charge needs an idempotency key")
        # Checked here because PostgreSQL rejects over-long strings that SQLite would store.
        sizes = {"idempotency_key": 160, "model": 64, "xai_request_id": 128, "conversation_key": 300}
        for name, size in sizes.items():
            if len(getattr(self, name)) > size:
                raise ValueError(f"charge {name} is longer than {size} characters")


@dataclass(frozen=True, kw_only=True)
class UsageSummary:
    """One user's spend and what is left; `remaining_*` is None where no limit applies."""

    limits: Limits
    exempt: bool
    day_ticks: int  # from the counters: settled costs plus estimates still held
    month_ticks: int
    images_today: int
    requests: int  # this month, from the ledger: settled calls only
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    tool_calls: int  # this month: searches and code runs
    tool_cost_ticks: int  # their part of the month's spend
    workspace_month_ticks: int
    workspace_monthly_limit: int  # 0 = no pool
    day_resets_at: datetime
    month_resets_at: datetime

    @property
    def remaining_day_ticks(self) -> int | None:
        return None if self.exempt else _remaining(self.limits.daily_ticks, self.day_ticks)

    @property
    def remaining_month_ticks(self) -> int | None:
        return None if self.exempt else _remaining(self.limits.monthly_ticks, self.month_ticks)

    @property
    def remaining_images(self) -> int | None:
        return None if self.exempt else _remaining(self.limits.daily_images, self.images_today)

    @property
    def remaining_workspace_ticks(self) -> int | None:
        return _remaining(self.workspace_monthly_limit, self.workspace_month_ticks)


def _remaining(limit: int, used: int) -> int | None:
    return None if limit == 0 else max(0, limit - used)
