"""Ticks as dollars: rounded for people, exact for machines (1 USD = 10^10 ticks)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bot.settings import TICKS_PER_USD


def format_usd(ticks: int) -> str:
    """Cents from $1 up, else 3 significant digits: "$12.35", "$0.50", "$0.0123".

    A small cost never shows as "$0.00" (people asked why a request was free): 1 tick is
    "$0.0000000001".
    """
    usd = abs(exact_usd(ticks))
    if usd == 0:
        return "$0.00"
    places = 2 if usd >= 1 else max(2, 2 - usd.adjusted())
    text = f"{usd.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):f}"
    whole, _, fraction = text.partition(".")
    return f"{'-' if ticks < 0 else ''}${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def exact_usd(ticks: int) -> Decimal:
    """The exact dollar amount; a power-of-ten divisor leaves nothing to round."""
    return Decimal(ticks) / TICKS_PER_USD
