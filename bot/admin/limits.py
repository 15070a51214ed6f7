"""The limits form of a user's page, read by the `quota` command's rules: dollar amounts from 0
(no limit) to 100,000, whole numbers of images, and a blank field leaves that limit as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.errors import BadInput
from bot.settings import usd_to_ticks

MAX_USD = Decimal(100_000)


@dataclass(frozen=True)
class LimitChange:
    """The limits to set; None leaves one as it was."""

    daily_ticks: int | None
    monthly_ticks: int | None
    daily_images: int | None

    @property
    def empty(self) -> bool:
        return self.daily_ticks is None and self.monthly_ticks is None and self.daily_images is None


def read_limits(form: Mapping[str, str]) -> LimitChange:
    """The change a submitted form asks for; BadInput names the field and what it accepts."""
    images = form.get("images", "").strip()
    if images and not images.isdigit():
        raise BadInput("Images a day accepts a whole number (0 = no limit).")
    return LimitChange(
        daily_ticks=_dollars(form.get("daily_usd", ""), "Daily limit"),
        monthly_ticks=_dollars(form.get("monthly_usd", ""), "Monthly limit"),
        daily_images=int(images) if images else None,
    )


def _dollars(raw: str, label: str) -> int | None:
    text = raw.strip().lstrip("$")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BadInput(f"{label} accepts an amount of US dollars such as 2.50 (0 = no limit).") from None
    if not amount.is_finite() or not 0 <= amount <= MAX_USD:
        raise BadInput(f"{label} accepts an amount from 0 (no limit) to 100000 US dollars.")
    return usd_to_ticks(amount)
