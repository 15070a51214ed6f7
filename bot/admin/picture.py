"""The `usage` command's picture: one user's spend per day over the last 30 days, as a PNG drawn
by matplotlib (imported on first use, so start-up does not pay for it).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.admin.charts import LIMIT_COLOUR, PALETTE
from bot.admin.ledger import Scope, local_days, user_days
from bot.db import Sessions
from bot.platform import Image
from bot.quotas import Subject, exact_usd
from bot.settings import Settings

PICTURE_DAYS = 30


def render_days(labels: Sequence[str], ticks: Sequence[int], *, limit_ticks: int, title: str) -> bytes:
    """A bar per day (US dollars) with the daily limit as a dashed line when there is one; PNG bytes."""
    # Figure without pyplot: no global state, no GUI backend, safe in a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.bar(range(len(ticks)), [float(exact_usd(t)) for t in ticks], color=PALETTE[0], label="spend")
    if limit_ticks:
        axes.axhline(float(exact_usd(limit_ticks)), color=LIMIT_COLOUR, linestyle="--", label="daily limit")
    step = max(1, len(labels) // 6)
    axes.set_xticks(range(0, len(labels), step), [labels[i][5:] for i in range(0, len(labels), step)])
    axes.set_ylabel("US dollars")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.legend(loc="upper left", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


async def usage_picture(
    sessions: Sessions,
    settings: Settings,
    subject: Subject,
    *,
    daily_limit_ticks: int,
    clock: Callable[[], datetime],
) -> Image:
    """The caller's last 30 days as a PNG, for the `usage` command to post with its figures."""
    days = local_days(clock(), settings.zone, PICTURE_DAYS)
    ticks = await user_days(sessions, Scope(subject.platform, subject.workspace), subject.user_id, days)
    labels = [day.date.isoformat() for day in days]
    title = f"Your Grok spend per day, last {PICTURE_DAYS} days ({settings.grokbot_timezone})"
    # Drawing takes tens of milliseconds of CPU: off the event loop.
    png = await asyncio.to_thread(render_days, labels, ticks, limit_ticks=daily_limit_ticks, title=title)
    return Image(png, "image/png", "grok-usage-30-days.png", caption=title)
