"""Charts of the admin pages as values: Chart.js configurations (drawn in the browser by the
vendored Chart.js) and the same figures as a table beside each chart, for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.admin.ledger import DailySeries
from bot.quotas import exact_usd, format_usd

# Colour-blind-safe (Okabe–Ito), in the order series are drawn.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
LIMIT_COLOUR = "#D55E00"
# The ledger's kinds as the overview names them; "search" is the tool spend of answers (ledger.by_kind).
KIND_GROUPS = {
    "chat": "chat",
    "deferred": "chat",
    "image": "images",
    "search": "search tools",
    "digest": "digests",
}
KIND_ORDER = ("chat", "images", "search tools", "digests")


@dataclass(frozen=True)
class Chart:
    """One chart: `series` are ticks per label; `limit` a dashed line (its name and ticks)."""

    id: str
    title: str
    labels: tuple[str, ...]
    series: dict[str, tuple[int, ...]]
    kind: str = "bar"  # "bar" (stacked) or "line"
    limit: tuple[str, int] | None = None
    empty: str = "Nothing was spent in this period."
    config: dict[str, Any] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", _config(self))

    @property
    def headings(self) -> tuple[str, ...]:
        limit = (self.limit[0],) if self.limit else ()
        return ("day", *self.series, *limit, "total")

    @property
    def rows(self) -> list[tuple[str, ...]]:
        """The figures, one row per label: each series in dollars, the limit, the total."""
        rows = []
        for i, label in enumerate(self.labels):
            values = [values[i] for values in self.series.values()]
            limit = (format_usd(self.limit[1]),) if self.limit else ()
            total = sum(values) if self.kind == "bar" else max(values, default=0)
            rows.append((label, *(format_usd(v) for v in values), *limit, format_usd(total)))
        return rows


def _usd(ticks: int) -> float:
    return float(exact_usd(ticks))


def _config(chart: Chart) -> dict[str, Any]:
    stacked = chart.kind == "bar"
    datasets: list[dict[str, Any]] = [
        {
            "label": name,
            "data": [_usd(v) for v in values],
            "backgroundColor": PALETTE[n % len(PALETTE)],
            "borderColor": PALETTE[n % len(PALETTE)],
            **({"pointRadius": 0} if chart.kind == "line" else {}),
        }
        for n, (name, values) in enumerate(chart.series.items())
    ]
    if chart.limit is not None:
        datasets.append(
            {
                "type": "line",
                "label": chart.limit[0],
                "data": [_usd(chart.limit[1])] * len(chart.labels),
                "borderColor": LIMIT_COLOUR,
                "borderDash": [6, 4],
                "pointRadius": 0,
                "fill": False,
            }
        )
    return {
        "type": chart.kind,
        "data": {"labels": list(chart.labels), "datasets": datasets},
        "options": {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "interaction": {"mode": "index", "intersect": False},
            "scales": {
                "x": {"stacked": stacked},
                "y": {
                    "stacked": stacked,
                    "beginAtZero": True,
                    "title": {"display": True, "text": "US dollars"},
                },
            },
        },
    }


def day_labels(series: DailySeries) -> tuple[str, ...]:
    return tuple(day.date.isoformat() for day in series.days)


def by_kind(series: DailySeries) -> dict[str, tuple[int, ...]]:
    """The ledger's kinds summed into the overview's groups: chat, images, search tools, digests."""
    groups: dict[str, list[int]] = {}
    for kind, values in series.series.items():
        name = KIND_GROUPS.get(kind, kind)
        into = groups.setdefault(name, [0] * len(values))
        for i, value in enumerate(values):
            into[i] += value
    order = [name for name in KIND_ORDER if name in groups] + sorted(set(groups) - set(KIND_ORDER))
    return {name: tuple(groups[name]) for name in order}


def cumulative(values: Sequence[int]) -> tuple[int, ...]:
    running, out = 0, []
    for value in values:
        running += value
        out.append(running)
    return tuple(out)
