"""Model and key listings, live prices with the built-in fallback, and cost arithmetic."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from bot.grok import (
    ChatMessage,
    GrokClient,
    ImagePart,
    ModelInfo,
    PriceBook,
    TextPart,
    TokenPrices,
    Tools,
    ToolUsage,
    Usage,
    WebSearch,
    XSearch,
)
from bot.grok.net import AsyncioTransport
from bot.grok.pricing import estimate_prompt_tokens
from tests.fakes.xai import FakeXAI, ScriptedReply, fake_xai, grok  # noqa: F401
from tests.grok import ask, client


async def test_list_models(grok: GrokClient) -> None:
    models = await grok.list_models()
    assert "grok-4.3" in models
    assert "grok-imagine-image" in models


async def test_language_models(grok: GrokClient) -> None:
    models = {m.id: m for m in await grok.language_models()}
    grok3 = models["grok-3"]
    assert (grok3.prompt_price, grok3.cached_prompt_price, grok3.completion_price) == (30000, 7500, 150000)
    assert grok3.aliases == ("grok-3-latest", "grok-3-beta")
    assert grok3.fingerprint == "fp_fake0c0ffee"
    assert "text" in grok3.input_modalities


async def test_image_models_price_in_ticks(grok: GrokClient) -> None:
    models = {m.id: m for m in await grok.image_models()}
    assert models["grok-imagine-image"].image_price == 200_000_000  # 2 cents
    assert models["grok-2-image-1212"].aliases == ("grok-2-image", "grok-2-image-latest")
    assert models["grok-2-image-1212"].max_prompt_length == 1024


async def test_api_key_info(fake_xai: FakeXAI, grok: GrokClient) -> None:
    info = await grok.api_key_info()
    assert info.redacted_key == "xai-...-key"
    assert info.name == "Fake key"
    assert info.team_id.startswith("5ea6f6bd")
    assert (info.blocked, info.disabled) == (False, False)
    assert "api-key:model:*" in info.acls
    fake_xai.team_blocked = True
    fake_xai.api_key_disabled = True
    info = await grok.api_key_info()
    assert (info.blocked, info.disabled) == (True, True)


async def test_refresh_prices_from_language_models(fake_xai: FakeXAI) -> None:
    book = PriceBook(tokens={"grok-3": TokenPrices(1, 1, 1)}, images={"grok-imagine-image": 5})
    async with httpx.AsyncClient(transport=AsyncioTransport()) as http:
        grok = client(fake_xai, http, prices=book)
        assert await grok.refresh_prices() is True
    assert grok.prices is book
    assert book.token_prices("grok-3") == TokenPrices(30000, 7500, 150000)  # 30000 -> 30000 ticks/token
    assert book.token_prices("grok-3-beta") == TokenPrices(30000, 7500, 150000)  # live alias
    assert book.image_ticks("grok-imagine-image", 2) == 400_000_000
    assert book.live


async def test_refresh_prices_falls_back_when_the_endpoint_fails(fake_xai: FakeXAI, grok: GrokClient) -> None:
    before = grok.prices.token_prices("grok-4.3")
    fake_xai.fail_next(500, times=10, path="/v1/language-models")
    assert await grok.refresh_prices() is False
    assert grok.prices.token_prices("grok-4.3") == before == TokenPrices(12500, 2000, 25000)
    assert not grok.prices.live
    fake_xai.fail_next(503, times=10, path="/v1/image-generation-models")
    assert await grok.refresh_prices() is False  # all or nothing
    assert not grok.prices.live


def test_implausible_live_image_price_is_ignored() -> None:
    book = PriceBook()
    book.update(language=[], image=[ModelInfo("grok-imagine-image", image_price=200_000_000 * 100_000_000)])
    assert book.image_ticks("grok-imagine-image", 1) == 200_000_000


def test_cost_from_cost_ticks_wins() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cost_ticks=42)
    assert PriceBook().cost_ticks("grok-3", usage) == 42


def test_cost_computed_with_xai_semantics() -> None:
    usage = Usage(prompt_tokens=1000, cached_tokens=400, completion_tokens=100, reasoning_tokens=50)
    expected = 600 * 30000 + 400 * 7500 + (100 + 50) * 150000
    assert PriceBook().cost_ticks("grok-3", usage) == expected == 43_500_000


async def test_cost_through_the_fake(fake_xai: FakeXAI, grok: GrokClient) -> None:
    fake_xai.queue_reply(ScriptedReply(text="a" * 40, prompt_tokens=100, cost_ticks=987654))
    completion = await grok.complete(ask())
    assert completion.usage is not None
    assert grok.prices.cost_ticks(completion.model, completion.usage) == 987654
    fake_xai.report_cost = False
    fake_xai.cached_tokens = 60
    fake_xai.queue_reply(ScriptedReply(text="a" * 40, prompt_tokens=100))
    completion = await grok.complete(ask(model="grok-3-mini", reasoning_effort="high"))
    usage = completion.usage
    assert usage is not None
    assert usage.cost_ticks is None
    assert completion.model == "grok-3-mini-high"  # a resolved name the book must still price
    expected = 40 * 3000 + 60 * 750 + (10 + usage.reasoning_tokens) * 5000
    assert grok.prices.cost_ticks(completion.model, usage) == expected


def test_unknown_models_are_charged_the_dearest_price() -> None:
    book = PriceBook()
    assert book.token_prices("grok-99-mystery") == TokenPrices(30000, 30000, 150000)
    assert book.image_ticks("grok-imagine-video", 1) == 700_000_000


def test_estimate_is_an_upper_bound() -> None:
    book = PriceBook()
    usage = Usage(prompt_tokens=500, cached_tokens=500, completion_tokens=200)
    estimate = book.estimate_ticks("grok-4.3", prompt_tokens=500, max_completion_tokens=200)
    assert estimate == 500 * 12500 + 200 * 25000
    assert estimate >= book.cost_ticks("grok-4.3", usage)
    with_reasoning = book.estimate_ticks(
        "grok-4.3", prompt_tokens=500, max_completion_tokens=200, reasoning_tokens=1000
    )
    assert with_reasoning == estimate + 1000 * 25000


def test_image_ticks() -> None:
    book = PriceBook()
    assert book.image_ticks("grok-imagine-image", 4) == 800_000_000
    assert book.image_ticks("grok-2-image", 1) == 700_000_000


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("grok-4.3", 1_000_000),
        ("grok-4-1-fast-reasoning", 2_000_000),
        ("grok-4", 256_000),
        ("grok-3-mini-high", 131_072),
        ("grok-code-fast-1", 256_000),
        ("something-else", 131_072),
    ],
)
def test_context_window(model: str, window: int) -> None:
    assert PriceBook().context_window(model) == window


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("grok-3", "grok-3"),
        ("grok-4-latest", "grok-4-0709"),
        ("grok-3-mini-high", "grok-3-mini"),
        ("grok-2-image-latest", "grok-2-image-1212"),
        ("grok-4.30", None),
        ("gpt-4o", None),
    ],
)
def test_resolves(name: str, known: str | None) -> None:
    assert PriceBook().resolves(name) == known


def test_prompt_token_estimate_counts_text_and_images() -> None:
    text_only = estimate_prompt_tokens([ChatMessage("user", "x" * 300)])
    with_image = estimate_prompt_tokens(
        [ChatMessage("user", (TextPart("x" * 300), ImagePart("data:image/png;base64,AAAA")))]
    )
    assert text_only >= 75  # at least chars / 4
    assert with_image - text_only == 1792


def test_the_2026_price_list() -> None:
    book = PriceBook()
    assert book.token_prices("grok-4.7") == TokenPrices(20_000, 5_000, 60_000)  # $2 / $0.50 / $6 per 1M
    assert book.token_prices("grok-4.5") == TokenPrices(20_000, 3_000, 60_000)
    assert book.token_prices("grok-4.20-0309-non-reasoning") == TokenPrices(12_500, 2_000, 25_000)
    assert book.token_prices("grok-4.20-multi-agent") == TokenPrices(12_500, 2_000, 25_000)
    assert book.token_prices("grok-build-0.1") == TokenPrices(10_000, 2_000, 20_000)
    assert book.context_window("grok-4.7") == 500_000
    # From 200k prompt tokens on, the long-context prices (estimates and computed costs alike).
    assert book.token_prices("grok-4.3", prompt_tokens=200_000) == TokenPrices(25_000, 4_000, 50_000)
    assert book.token_prices("grok-4.3", prompt_tokens=199_999) == TokenPrices(12_500, 2_000, 25_000)
    assert book.estimate_ticks("grok-4.7", prompt_tokens=250_000, max_completion_tokens=0) == 250_000 * 40_000
    assert book.token_prices("grok-3", prompt_tokens=500_000) == TokenPrices(
        30_000, 7_500, 150_000
    )  # one price


def test_the_default_models_are_current_and_the_reasoning_one_takes_effort(grok: GrokClient) -> None:
    from bot.settings import Settings

    fields = Settings.model_fields
    for name in ("grokbot_model", "grokbot_reasoning_model"):
        model = fields[name].default
        assert model in ("grok-4.7", "grok-4.6", "grok-4.5", "grok-4.3")  # on the 2026-09 list, not retired
    assert grok.takes_reasoning_effort(fields["grokbot_reasoning_model"].default)


def test_tool_calls_at_the_current_prices() -> None:
    book = PriceBook()
    tools = ToolUsage(
        web_search_calls=2, code_interpreter_calls=1, x_search_calls=1, x_posts_fetched=30, x_users_fetched=2
    )
    # web and code $5 per 1,000 calls; X $5 per 1,000 posts and $10 per 1,000 profiles
    assert book.tools.of(tools) == 3 * 50_000_000 + 30 * 50_000_000 + 2 * 100_000_000
    # Usage from before 2026-09-21 names no posts: X search at $5 per 1,000 calls.
    assert book.tools.of(ToolUsage(x_search_calls=3, file_search_calls=2)) == 3 * 50_000_000 + 2 * 25_000_000
    usage = Usage(prompt_tokens=1000, cached_tokens=400, completion_tokens=100, tools=tools)
    assert book.cost_ticks("grok-4.3", usage) == 600 * 12_500 + 400 * 2_000 + 100 * 25_000 + book.tools.of(
        tools
    )
    assert book.cost_ticks("grok-4.3", replace(usage, cost_ticks=7)) == 7  # cost_in_usd_ticks wins


def test_the_tool_allowance_for_a_reservation() -> None:
    book = PriceBook()
    assert book.tool_allowance_ticks("grok-4.3", Tools(), max_calls=5) == 0
    assert book.tool_allowance_ticks("grok-4.3", Tools(web=WebSearch()), max_calls=0) == 0
    per_token = book.token_prices("grok-4.3").prompt
    web = book.tool_allowance_ticks("grok-4.3", Tools(web=WebSearch()), max_calls=4, prompt_tokens=2_000)
    assert web == 4 * (50_000_000 + (2_000 + 8_000) * per_token)
    # With X search on, every call is allowed what an X search of 20 posts costs (the dearest).
    both = book.tool_allowance_ticks("grok-4.3", Tools(web=WebSearch(), x=XSearch(), code=True), max_calls=4)
    assert both == 4 * (20 * 50_000_000 + 8_000 * per_token)
    # The allowance covers what the recorded X search really cost (one call, 27,236 input tokens).
    tools = ToolUsage(x_search_calls=1, x_posts_fetched=20)
    recorded = Usage(
        27_236, completion_tokens=1_986, reasoning_tokens=1_091, cached_tokens=4_585, tools=tools
    )
    estimate = book.estimate_ticks(
        "grok-4.3", prompt_tokens=100, max_completion_tokens=4096, reasoning_tokens=8000
    )
    allowance = book.tool_allowance_ticks("grok-4.3", Tools(x=XSearch()), max_calls=4, prompt_tokens=100)
    assert estimate + allowance >= book.cost_ticks("grok-4.3", recorded)
