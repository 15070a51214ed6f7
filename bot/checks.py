"""What `grokbot check` reports: a `CheckLine` per thing tried (✓, or ✗ with its fix, or – for a
note), and the xAI part: the key, the configured models with the prices that will be charged, and
whether the endpoint serves the Responses API. Platform checks (adapters) return CheckLines too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

import httpx

from bot.errors import (
    GrokAuthFailed,
    GrokError,
    GrokOutOfCredits,
    GrokRateLimited,
    GrokRejected,
    GrokUnavailable,
)
from bot.grok import GrokClient, ModelInfo, PriceBook, RetryPolicy, Timeouts
from bot.quotas import format_usd
from bot.settings import Settings

__all__ = ["CheckLine", "PlatformCheck", "write_lines", "xai_lines"]

KEY_FIX = "Create a key at https://console.x.ai (API Keys) and set it as XAI_API_KEY."
CREDITS_FIX = "Add credits or raise the team's spending limit at https://console.x.ai (Billing)."
ENDPOINT_FIX = (
    "Check XAI_BASE_URL (an xAI-compatible API, https://api.x.ai/v1 by default) and this machine's "
    "network (DNS, proxy, firewall); https://status.x.ai shows xAI's own outages."
)
MODEL_SETTINGS = {
    "chat": "GROKBOT_MODEL",
    "reasoning": "GROKBOT_REASONING_MODEL",
    "image": "GROKBOT_IMAGE_MODEL",
}
AGAIN = "Run `grokbot check` again in a minute."
MODELS_NAMED = 8  # in a fix, the first few models the key can use


@dataclass(frozen=True)
class CheckLine:
    """One line of `grokbot check`: `ok` True (✓), False (✗, and `fix` says what to do), or None
    (–, a note that is neither)."""

    ok: bool | None
    text: str
    fix: str = ""

    @property
    def written(self) -> str:
        mark = "–" if self.ok is None else "✓" if self.ok else "✗"
        return f"{mark} {self.text}\n" + (f"  → {self.fix}\n" if self.fix else "")


# A platform's part of the check, from its adapter (the composition root passes them in).
PlatformCheck = Callable[[Settings], Awaitable[list[CheckLine]]]


def write_lines(lines: Iterable[CheckLine], out: TextIO) -> bool:
    """Write `lines` to `out`; True when none of them failed."""
    ok = True
    for line in lines:
        out.write(line.written)
        ok = ok and line.ok is not False
    return ok


async def xai_lines(settings: Settings, http: httpx.AsyncClient) -> list[CheckLine]:
    """The key, the configured models and their prices, the Responses API: until xAI refuses or
    cannot be reached, which ends the xAI part with a line saying which of the two it was."""
    if settings.xai_api_key is None:
        return [CheckLine(False, "XAI_API_KEY is not set", KEY_FIX)]
    grok = GrokClient(
        http,
        api_key=settings.xai_api_key.get_secret_value(),
        base_url=settings.xai_base_url,
        # An operator is waiting: one retry, not four, and no five-minute wait for a silent host.
        retry=RetryPolicy(attempts=2),
        timeouts=Timeouts(connect=10.0, read=30.0),
    )
    lines: list[CheckLine] = []
    try:
        lines.append(await _key_line(grok))
        chat, image = await grok.language_models(), await grok.image_models()
        grok.prices.update(language=chat, image=image)  # what the PriceBook accepts is charged
        lines.extend(_model_lines(settings, grok.prices, chat, image))
        lines.append(await _responses_line(grok, api=settings.grokbot_xai_api))
    except GrokError as exc:
        lines.append(_refused(exc, settings.xai_base_url))
    return lines


async def _key_line(grok: GrokClient) -> CheckLine:
    try:
        key = await grok.api_key_info()
    except GrokRejected as exc:
        if exc.status != 404:
            raise
        return CheckLine(None, "the endpoint has no /v1/api-key; the key is tried by listing models")
    if key.blocked or key.disabled:
        state = "disabled" if key.disabled else "blocked (the key or its team)"
        return CheckLine(False, f"xAI API key {key.redacted_key} ({key.name}) is {state}", KEY_FIX)
    return CheckLine(True, f"xAI API key {key.redacted_key} ({key.name})")


def _refused(exc: GrokError, base_url: str) -> CheckLine:
    """xAI's refusal (the key, credits, a rate limit) or its absence, each with its own fix."""
    if isinstance(exc, GrokOutOfCredits):
        return CheckLine(
            False, f"xAI refused: no credits, or the spending limit is reached: {exc}", CREDITS_FIX
        )
    if isinstance(exc, GrokAuthFailed):
        return CheckLine(False, f"xAI API key rejected by {base_url}: {exc}", KEY_FIX)
    if isinstance(exc, GrokUnavailable):
        return CheckLine(False, f"xAI unreachable at {base_url}: {exc}", ENDPOINT_FIX)
    if isinstance(exc, GrokRateLimited):
        return CheckLine(False, f"xAI rate-limited the check: {exc}", AGAIN)
    return CheckLine(False, f"xAI at {base_url} refused the check: {exc}", ENDPOINT_FIX)


def _model_lines(
    settings: Settings, prices: PriceBook, chat: Sequence[ModelInfo], image: Sequence[ModelInfo]
) -> list[CheckLine]:
    roles = (
        ("chat", settings.grokbot_model, chat),
        ("reasoning", settings.grokbot_reasoning_model, chat),
        ("image", settings.grokbot_image_model, image),
    )
    return [_model_line(role, name, models, prices) for role, name, models in roles]


def _model_line(role: str, name: str, models: Sequence[ModelInfo], prices: PriceBook) -> CheckLine:
    model = next((m for m in models if m.id == name or name in m.aliases), None)
    if model is None:
        usable = ", ".join(m.id for m in models[:MODELS_NAMED])
        fix = f"Set {MODEL_SETTINGS[role]} to a model this key can use: {usable}."
        return CheckLine(False, f"{role} model {name!r} is not available to this key", fix)
    price = _image_price(model, prices) if role == "image" else _token_prices(model, prices)
    return CheckLine(True, f"{role} model {name}: {price}")


def _image_price(model: ModelInfo, prices: PriceBook) -> str:
    """The listed price per image, or, where the PriceBook refused it, that and the price charged."""
    used = prices.image_ticks(model.id, 1)
    if used == model.image_price:
        return f"{format_usd(used)} per image"
    return (
        f"listed at {format_usd(model.image_price)} per image, ignored as implausible; "
        f"{format_usd(used)} per image is charged"
    )


def _token_prices(model: ModelInfo, prices: PriceBook) -> str:
    """The listed prices per 1M tokens, or, where the PriceBook refused them, those charged."""
    used = prices.token_prices(model.id)
    listed = _per_million(model.prompt_price, model.completion_price)
    if (used.prompt, used.completion) == (model.prompt_price, model.completion_price):
        return listed
    charged = _per_million(used.prompt, used.completion)
    return f"listed at {listed}, ignored as implausible; {charged} is charged"


def _per_million(prompt: int, completion: int) -> str:
    """Ticks per token as dollars per 1M tokens in and out."""
    return f"{format_usd(prompt * 1_000_000)} / {format_usd(completion * 1_000_000)} per 1M tokens in / out"


async def _responses_line(grok: GrokClient, *, api: str) -> CheckLine:
    """Whether interactive answers can use the Responses API (web and X search) at this endpoint."""
    if api == "chat":
        return CheckLine(None, "answers use Chat Completions (GROKBOT_XAI_API=chat): no web or X search")
    if await grok.serves_responses():
        return CheckLine(True, "the endpoint serves the Responses API (/v1/responses): answers may search")
    return CheckLine(
        False,
        "the endpoint does not serve the Responses API (/v1/responses)",
        "set GROKBOT_XAI_API=chat to answer on Chat Completions (without web or X search)",
    )
