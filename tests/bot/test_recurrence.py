"""When digests recur: friendly forms, Unix cron with Sunday as 0 and 7, time zones, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.digests.recurrence import ACCEPTED, Schedule, compile_schedule, parse_schedule
from bot.errors import BadInput

# Thursday 26 November 2026, noon UTC.
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def parse(text: str, zone: str = "UTC") -> Schedule:
    return parse_schedule(text, default_timezone=zone, now=NOW)


def fires(schedule: Schedule, count: int, start: datetime = NOW) -> list[datetime]:
    times, moment = [], start
    for _ in range(count):
        nxt = schedule.next_after(moment)
        assert nxt is not None
        times.append(nxt)
        moment = nxt
    return times


@pytest.mark.parametrize("expr", ["0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * SUN"])
def test_sunday_is_0_and_7_like_unix_cron(expr: str) -> None:
    times = fires(compile_schedule(expr, "UTC", now=NOW), 3)
    assert [t.strftime("%a %H:%M") for t in times] == ["Sun 09:00"] * 3
    assert times[0] == datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def test_apscheduler_from_crontab_would_read_0_as_monday() -> None:
    # The trap this module exists to avoid (reference §3.3): keep it visible.
    trap = CronTrigger.from_crontab("0 9 * * 0", timezone="UTC").get_next_fire_time(None, NOW)
    assert trap is not None and trap.strftime("%a") == "Mon"
    assert compile_schedule("0 9 * * 0", "UTC", now=NOW).next_after(NOW) == datetime(
        2026, 11, 29, 9, tzinfo=UTC
    )


def test_ranges_lists_and_steps() -> None:
    weekdays = fires(compile_schedule("30 17 * * 1-5", "UTC", now=NOW), 7)
    assert [t.strftime("%a") for t in weekdays] == ["Thu", "Fri", "Mon", "Tue", "Wed", "Thu", "Fri"]
    assert all(t.strftime("%H:%M") == "17:30" for t in weekdays)
    # 0-5 is Sunday to Friday: APScheduler would refuse "sun-fri" as a backwards range.
    sun_to_fri = fires(compile_schedule("0 8 * * 0-5", "UTC", now=NOW), 7)
    assert "Sat" not in {t.strftime("%a") for t in sun_to_fri}
    assert "Sun" in {t.strftime("%a") for t in sun_to_fri}
    # 5-7 is Friday to Sunday.
    weekend = fires(compile_schedule("0 8 * * 5-7", "UTC", now=NOW), 3)
    assert [t.strftime("%a") for t in weekend] == ["Fri", "Sat", "Sun"]
    six_hourly = fires(compile_schedule("0 */6 * * *", "UTC", now=NOW), 3)
    assert [t.hour for t in six_hourly] == [18, 0, 6]
    monthly = fires(compile_schedule("0 9 1 jan,jul *", "UTC", now=NOW), 2)
    assert [(t.month, t.day) for t in monthly] == [(1, 1), (7, 1)]


def test_day_of_month_and_weekday_both_set_fire_on_either() -> None:
    # Unix cron: "on the 1st, and on every Monday" (OR), not "on Mondays that are the 1st".
    times = fires(compile_schedule("0 9 1 * 1", "UTC", now=NOW), 3)
    assert times == [
        datetime(2026, 11, 30, 9, tzinfo=UTC),  # Monday
        datetime(2026, 12, 1, 9, tzinfo=UTC),  # the 1st (a Tuesday)
        datetime(2026, 12, 7, 9, tzinfo=UTC),  # Monday
    ]


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("09:00", "0 9 * * *"),
        ("daily 09:00", "0 9 * * *"),
        ("every day at 7:05", "5 7 * * *"),
        ("mon 09:00", "0 9 * * 1"),
        ("Monday 09:00", "0 9 * * 1"),
        ("sun 10:00", "0 10 * * 0"),
        ("weekdays 17:30", "30 17 * * 1-5"),
        ("weekends 10:00", "0 10 * * 0,6"),
        ("mon,thu 08:30", "30 8 * * 1,4"),
        ("fri-mon 08:30", "30 8 * * 5,6,0,1"),
    ],
)
def test_friendly_forms(text: str, cron: str) -> None:
    assert parse(text).cron == cron


def test_time_zone_from_text_or_default() -> None:
    berlin = parse("weekdays 09:00 tz:Europe/Berlin")
    assert berlin.timezone == "Europe/Berlin"
    assert berlin.next_after(NOW) == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)  # 09:00 CET
    summer = berlin.next_after(datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert summer == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert parse("09:00", zone="America/New_York").next_after(NOW) == datetime(2026, 11, 26, 14, tzinfo=UTC)
    assert berlin.describe() == "weekdays at 09:00 (Europe/Berlin)"


def test_missed_slots_collapse_to_the_latest() -> None:
    daily = parse("09:00")
    first_missed = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert daily.latest_until(first_missed, NOW) == datetime(2026, 11, 26, 9, tzinfo=UTC)
    assert daily.latest_until(first_missed, first_missed) == first_missed
    assert daily.previous_before(datetime(2026, 11, 26, 9, tzinfo=UTC)) == datetime(
        2026, 11, 25, 9, tzinfo=UTC
    )
    weekly = parse("mon 09:00")
    assert weekly.previous_before(datetime(2026, 11, 30, 9, tzinfo=UTC)) == datetime(
        2026, 11, 23, 9, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Accepted"),
        ("0 9 * *", "Accepted"),
        ("whenever", "Accepted"),
        ("25:00", "24-hour clock"),
        ("daily 9am", "24-hour clock"),
        ("someday 09:00", "is not a day"),
        ("0 9 * * 8", "out of range for the day of week field (0-7)"),
        ("60 9 * * *", "out of range for the minute field (0-59)"),
        ("0 24 * * *", "out of range for the hour field"),
        ("0 9 0 * *", "out of range for the day of month field"),
        ("0 9 * 13 *", "out of range for the month field"),
        ("0 9 * * 5-1", "runs backwards"),
        ("*/0 9 * * *", "at least 1"),
        ("0 9 L * *", "not valid in the day of month field"),
        ("0 9 * * 1#2", "not valid cron syntax"),
        ("0 9 31 2 *", "never runs"),
        ("* * * * *", "at most hourly"),
        ("*/30 * * * *", "at most hourly"),
        ("09:00 tz:Mars/Olympus", "Unknown time zone"),
    ],
)
def test_invalid_input_says_what_is_accepted(text: str, fragment: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(text)
    assert fragment in str(caught.value)


def test_accepted_forms_are_named_in_the_message() -> None:
    with pytest.raises(BadInput) as caught:
        parse("at some point")
    message = str(caught.value)
    assert ACCEPTED in message
    for example in ("09:00", "weekdays 17:30", "30 9 * * 1-5", "tz:Europe/Berlin", "0 or 7 = Sunday"):
        assert example in message


def test_hourly_is_the_most_frequent_allowed() -> None:
    hourly = compile_schedule("0 * * * *", "UTC", now=NOW)
    times = fires(hourly, 3)
    assert [b - a for a, b in pairwise(times)] == [timedelta(hours=1)] * 2


def test_the_least_interval_is_the_operators() -> None:
    minutely = compile_schedule("* * * * *", "UTC", now=NOW, min_interval=timedelta(seconds=60))
    assert [b - a for a, b in pairwise(fires(minutely, 3))] == [timedelta(minutes=1)] * 2
    assert parse_schedule("*/5 * * * *", default_timezone="UTC", now=NOW, min_interval=timedelta(minutes=5))
    with pytest.raises(BadInput) as caught:
        parse_schedule("*/5 * * * *", default_timezone="UTC", now=NOW, min_interval=timedelta(minutes=10))
    assert str(caught.value) == (
        "Digests can run at most every 10 minutes here (GROKBOT_DIGEST_MIN_INTERVAL_S = 600 s); "
        "the schedule `*/5 * * * *` runs more often."
    )
    with pytest.raises(BadInput) as irregular:  # 09:00 and 09:30 once a day: the shortest gap counts
        compile_schedule("0,30 9 * * *", "UTC", now=NOW, min_interval=timedelta(hours=2))
    assert "at most every 2 hours here" in str(irregular.value)
