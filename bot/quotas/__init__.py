"""Spending and image limits: reserve-then-settle over per-period counters and a usage ledger.

Enforcement is one conditional UPDATE … RETURNING per counter; a request the limits cannot cover
whole is held at what they allow. The usage_event ledger records each charge once per idempotency key.
"""

from __future__ import annotations

from bot.quotas.money import exact_usd, format_usd
from bot.quotas.periods import day_start, month_start
from bot.quotas.service import Quotas
from bot.quotas.values import Ask, Cap, Charge, Limits, Reservation, Subject, UsageSummary

__all__ = [
    "Ask",
    "Cap",
    "Charge",
    "Limits",
    "Quotas",
    "Reservation",
    "Subject",
    "UsageSummary",
    "day_start",
    "exact_usd",
    "format_usd",
    "month_start",
]
