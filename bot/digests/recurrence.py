"""When a digest recurs: what users type ("09:00", "weekdays 17:30", 5-field Unix cron, "tz:Zone")
parsed into a normalised Unix cron in a time zone, and its fire times from APScheduler's CronTrigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.errors import BadInput

ACCEPTED = (
    "a daily time (`09:00` or `daily 09:00`), days and a time (`mon 09:00`, `mon,thu 08:30`, "
    "`weekdays 17:30`, `weekends 10:00`), or a 5-field cron expression (`30 9 * * 1-5`; day of week "
    "0 or 7 = Sunday), optionally followed by a time zone such as `tz:Europe/Berlin`"
)
# Digests are summaries, not alerts: by default more often than hourly is almost surely a typo, and
# costs money. Operators of busy places may allow more (GROKBOT_DIGEST_MIN_INTERVAL_S, passed in).
MIN_INTERVAL = timedelta(hours=1)
# A schedule whose next run is further away than this is refused as "never" (e.g. 31 February).
HORIZON = timedelta(days=366 * 5)

_UNIX_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # index = Unix day number
_DAY_NAMES = {name: number for number, name in enumerate(_UNIX_DAYS)} | {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}
_DAY_GROUPS = {
    "daily": "*",
    "everyday": "*",
    "weekdays": "1-5",
    "weekday": "1-5",
    "weekends": "0,6",
    "weekend": "0,6",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    _Field("day of week", 0, 7, {d: i for i, d in enumerate(_UNIX_DAYS)}),
)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_ITEM = re.compile(r"^(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/(\d+))?$")


@dataclass(frozen=True)
class Schedule:
    """A 5-field cron expression with Unix semantics, evaluated in `timezone`."""

    cron: str
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _triggers(self) -> list[CronTrigger]:
        return _triggers(self.cron, self.zone)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment` (aware UTC), or None if there is none."""
        # CronTrigger rounds a start with microseconds up to the next whole second: strictly after.
        start = moment + timedelta(microseconds=1)
        times = [t.get_next_fire_time(None, start) for t in self._triggers()]
        found = [t for t in times if t is not None]
        return min(found).astimezone(UTC) if found else None

    def latest_until(self, due: datetime, now: datetime) -> datetime:
        """The latest fire time in [due, now], `due` being one: where a late run catches up to."""
        slot = due
        while (following := self.next_after(slot)) is not None and following <= now:
            slot = following
        return slot

    def previous_before(self, moment: datetime) -> datetime | None:
        """The last fire time strictly before `moment` (within a year), or None."""
        for window in (timedelta(hours=2), timedelta(days=2), timedelta(days=32), timedelta(days=367)):
            first = self.next_after(moment - window - timedelta(microseconds=1))
            if first is not None and first < moment:
                return self.latest_until(first, moment - timedelta(microseconds=1))
        return None

    def describe(self) -> str:
        """For people: "weekdays at 17:30 (Europe/Berlin)", or the cron expression."""
        minute, hour, dom, month, dow = self.cron.split()
        if minute.isdigit() and hour.isdigit() and dom == "*" and month == "*":
            at = f"{int(hour):02d}:{int(minute):02d}"
            days = {"*": "every day", "1-5": "weekdays", "0,6": "weekends"}.get(dow)
            if days is None:
                # Listed from Monday, the way people read a week; Unix 7 is Sunday too.
                numbers = sorted({n % 7 for n in _expand(dow, _FIELDS[4])}, key=lambda n: (n + 6) % 7)
                days = ", ".join(_UNIX_DAYS[n].capitalize() for n in numbers)
            return f"{days} at {at} ({self.timezone})"
        return f"cron `{self.cron}` ({self.timezone})"


def parse_schedule(
    text: str, *, default_timezone: str, now: datetime, min_interval: timedelta = MIN_INTERVAL
) -> Schedule:
    """What a user typed → Schedule, or BadInput naming the accepted forms (or the least interval
    between two runs, when it runs more often)."""
    words = text.strip().lower().split()
    zone = default_timezone
    rest: list[str] = []
    for word in words:
        if word.startswith("tz:"):
            zone = _zone_name(text.split()[words.index(word)][3:])
        else:
            rest.append(word)
    if rest[:1] == ["every"] and rest[1:2] == ["day"]:
        rest = ["daily", *rest[2:]]
    if len(rest) == 3 and rest[1] == "at":
        rest = [rest[0], rest[2]]
    if len(rest) == 1 and _TIME.match(rest[0]):
        rest = ["daily", rest[0]]
    if len(rest) == 2:
        cron = f"{_time_fields(rest[1])} * * {_days_field(rest[0])}"
    elif len(rest) == 5:
        cron = " ".join(rest)
    else:
        raise BadInput(f"I can't read the schedule `{text.strip()}`. Accepted: {ACCEPTED}.")
    return compile_schedule(cron, zone, now=now, min_interval=min_interval)


def compile_schedule(
    cron: str, timezone: str, *, now: datetime, min_interval: timedelta = MIN_INTERVAL
) -> Schedule:
    """Validate a 5-field Unix cron expression in `timezone`; normalise it; refuse schedules that
    never run or run more often than every `min_interval`."""
    fields = cron.split()
    if len(fields) != 5:
        raise BadInput(
            f"A cron expression has 5 fields (minute hour day month weekday). Accepted: {ACCEPTED}."
        )
    for value, spec in zip(fields, _FIELDS, strict=True):
        _expand(value, spec)  # raises BadInput with the field's name
    schedule = Schedule(" ".join(fields), _zone_name(timezone))
    first = schedule.next_after(now)
    if first is None or first - now > HORIZON:
        raise BadInput(f"The schedule `{schedule.cron}` never runs (is that a real date?).")
    if _shortest_gap(schedule, first) < min_interval:
        raise BadInput(
            f"Digests can run at most {_every(min_interval)} here (GROKBOT_DIGEST_MIN_INTERVAL_S = "
            f"{int(min_interval.total_seconds())} s); the schedule `{schedule.cron}` runs more often."
        )
    return schedule


def _shortest_gap(schedule: Schedule, first: datetime) -> timedelta:
    """The shortest time between two of the 25 runs from `first` on."""
    gaps, moment = [], first
    for _ in range(24):
        following = schedule.next_after(moment)
        if following is None:
            break
        gaps.append(following - moment)
        moment = following
    return min(gaps, default=HORIZON)


def _every(interval: timedelta) -> str:
    """How often, for people: "hourly", "every 5 minutes", "every 90 seconds"."""
    seconds = int(interval.total_seconds())
    named = {60: "every minute", 3600: "hourly", 86400: "daily"}
    if seconds in named:
        return named[seconds]
    if seconds % 3600 == 0:
        return f"every {seconds // 3600} hours"
    if seconds % 60 == 0:
        return f"every {seconds // 60} minutes"
    return f"every {seconds} seconds"


def _zone_name(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"Unknown time zone `{name}`: use an IANA name such as `tz:Europe/Berlin`.") from None
    return name


def _time_fields(word: str) -> str:
    match = _TIME.match(word)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise BadInput(f"`{word}` is not a time of day: write HH:MM on a 24-hour clock, e.g. `17:30`.")
    return f"{int(match.group(2))} {int(match.group(1))}"


def _days_field(word: str) -> str:
    """`mon`, `monday`, `mon-fri`, `mon,thu`, `weekdays`, `daily` → a Unix day-of-week field."""
    if word in _DAY_GROUPS:
        return _DAY_GROUPS[word]
    items = []
    for item in word.split(","):
        first, _, last = item.partition("-")
        try:
            numbers = [_DAY_NAMES[first]] + ([_DAY_NAMES[last]] if last else [])
        except KeyError:
            raise BadInput(
                f"`{word}` is not a day: use mon…sun, a range such as `mon-fri`, a list such as "
                f"`mon,thu`, `weekdays`, `weekends` or `daily`. Accepted schedules: {ACCEPTED}."
            ) from None
        if last and numbers[1] < numbers[0]:
            numbers[1] += 7  # `fri-mon` wraps over Sunday: spelled 5-8 and folded below
        items.append(
            ",".join(str(n % 7) for n in range(numbers[0], numbers[-1] + 1)) if last else str(numbers[0])
        )
    return ",".join(items)


def _expand(value: str, spec: _Field) -> set[int]:
    """The values a Unix cron field matches, or BadInput saying what is wrong with it."""
    result: set[int] = set()
    for item in value.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise BadInput(f"The {spec.name} field `{value}` is not valid cron syntax. Accepted: {ACCEPTED}.")
        star, first, last, step = match.groups()
        low = spec.low if star else _number(first, spec)
        high = spec.high if star or (step and not last) else _number(last, spec) if last else low
        if high < low:
            raise BadInput(f"The {spec.name} range `{item}` runs backwards.")
        stride = int(step) if step else 1
        if stride == 0:
            raise BadInput(f"The {spec.name} step in `{item}` must be at least 1.")
        result.update(range(low, high + 1, stride))
    return result


def _number(token: str, spec: _Field) -> int:
    number = int(token) if token.isdigit() else spec.names.get(token[:3] if len(token) > 3 else token)
    if number is None:
        names = f" or {_UNIX_DAYS[0]}…{_UNIX_DAYS[-1]}" if spec.name == "day of week" else ""
        names = " or jan…dec" if spec.name == "month" else names
        raise BadInput(f"`{token}` is not valid in the {spec.name} field: use {spec.low}-{spec.high}{names}.")
    if not spec.low <= number <= spec.high:
        raise BadInput(f"`{token}` is out of range for the {spec.name} field ({spec.low}-{spec.high}).")
    return number


def _triggers(cron: str, zone: ZoneInfo) -> list[CronTrigger]:
    """CronTriggers matching `cron` with Unix semantics.

    Two Unix rules APScheduler 3.x does not share: day of week 0 and 7 are Sunday (its
    `from_crontab` reads 0 as Monday), so days go over as names; and when both day of month and
    day of week are restricted, Unix fires on either (OR), so that case becomes two triggers.
    """
    minute, hour, dom, month, dow = cron.split()
    days = sorted({n % 7 for n in _expand(dow, _FIELDS[4])})
    dow_names = "*" if dow == "*" else ",".join(_apscheduler_day(n) for n in days)
    common = {
        "minute": _listed(minute, _FIELDS[0]),
        "hour": _listed(hour, _FIELDS[1]),
        "month": _listed(month, _FIELDS[3]),
        "timezone": zone,
    }
    dom_listed = _listed(dom, _FIELDS[2])
    if dom != "*" and dow != "*":
        return [
            CronTrigger(day=dom_listed, day_of_week="*", **common),
            CronTrigger(day="*", day_of_week=dow_names, **common),
        ]
    return [CronTrigger(day=dom_listed, day_of_week=dow_names, **common)]


def _listed(value: str, spec: _Field) -> str:
    return "*" if value == "*" else ",".join(str(n) for n in sorted(_expand(value, spec)))


def _apscheduler_day(unix_day: int) -> str:
    return _UNIX_DAYS[unix_day % 7]
