"""Quota periods: days and months start at local midnight in GROKBOT_TIMEZONE; times are aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def period_keys(now: datetime, zone: ZoneInfo) -> tuple[str, str]:
    """The day and month keys of `now` in `zone`: ("2026-11-26", "2026-11")."""
    local = now.astimezone(zone)
    return local.strftime("%Y-%m-%d"), local.strftime("%Y-%m")


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    return _midnight(now.astimezone(zone).date(), zone)


def month_start(now: datetime, zone: ZoneInfo) -> datetime:
    return _midnight(now.astimezone(zone).date().replace(day=1), zone)


def next_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The next local midnight in `zone`."""
    return _midnight(now.astimezone(zone).date() + timedelta(days=1), zone)


def next_month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight of the first of next month in `zone`."""
    today = now.astimezone(zone).date()
    return _midnight(date(today.year + today.month // 12, today.month % 12 + 1, 1), zone)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A midnight skipped by a DST change resolves to the instant the day really starts.
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
