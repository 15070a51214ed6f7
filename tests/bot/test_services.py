"""`grokbot check` and `grokbot usage` over the xAI fake and a real database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.checks import CheckLine
from bot.db import upgrade_async
from bot.services import check, usage_report
from bot.settings import Settings
from tests.bot.engine_env import settings_for
from tests.fakes.xai import FakeXAI
from tests.fakes.xai.models import IMAGE_MODELS


async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'check.db'}"
    await upgrade_async(url)
    return url


async def test_check_reports_a_working_key_and_the_models_with_prices(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    out = io.StringIO()
    settings = settings_for(fake_xai, database_url=await sqlite_url(tmp_path))
    assert await check(settings, out=out) is True
    report = out.getvalue()
    assert "✓ database reachable (sqlite)" in report
    assert "✓ xAI API key" in report
    assert "chat model grok-4.3" in report and "per 1M tokens" in report
    assert "image model grok-imagine-image: $0.02 per image" in report
    assert "✗" not in report
    assert fake_xai.api_key not in report


async def test_check_fails_on_a_wrong_key_without_showing_it(fake_xai: FakeXAI, tmp_path: Path) -> None:
    out = io.StringIO()
    url = await sqlite_url(tmp_path)
    settings = settings_for(fake_xai, database_url=url, xai_api_key="xai-wrong-secret-999")
    assert await check(settings, out=out) is False
    assert "✗ xAI API key rejected" in out.getvalue()
    assert "xai-wrong-secret-999" not in out.getvalue()
    assert "→ Create a key at https://console.x.ai" in out.getvalue()  # the fix, under the line
    assert "unreachable" not in out.getvalue()  # refused, not "could not be reached"


# Nobody listens on port 1 (the fakes take ephemeral ports): connections are refused at once.
NOWHERE = "http://127.0.0.1:1"


async def test_check_tells_an_unreachable_endpoint_from_a_refused_key(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    out = io.StringIO()
    url = await sqlite_url(tmp_path)
    nowhere = f"{NOWHERE}/v1"
    settings = settings_for(fake_xai, database_url=url, xai_base_url=nowhere)
    assert await check(settings, out=out) is False
    report = out.getvalue()
    assert f"✗ xAI unreachable at {nowhere}: xAI could not be reached: ConnectError" in report
    assert "→ Check XAI_BASE_URL" in report
    assert "rejected" not in report and "Create a key" not in report  # not told to replace the key
    assert fake_xai.api_key not in report


async def test_check_reports_exhausted_credits_as_such(fake_xai: FakeXAI, tmp_path: Path) -> None:
    out = io.StringIO()
    fake_xai.credits_exhausted = 403
    assert await check(settings_for(fake_xai, database_url=await sqlite_url(tmp_path)), out=out) is False
    assert "✗ xAI refused: no credits, or the spending limit is reached" in out.getvalue()
    assert "→ Add credits or raise the team's spending limit" in out.getvalue()


async def test_check_reports_a_blocked_key_with_its_fix(fake_xai: FakeXAI, tmp_path: Path) -> None:
    out = io.StringIO()
    fake_xai.api_key_blocked = True
    assert await check(settings_for(fake_xai, database_url=await sqlite_url(tmp_path)), out=out) is False
    assert "is blocked (the key or its team)" in out.getvalue()


async def test_an_implausible_listed_price_is_reported_as_ignored_with_the_price_charged(
    fake_xai: FakeXAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seen in the wild: an image price of 200,000,000 "cents", $2,000,000 per image.
    monkeypatch.setitem(IMAGE_MODELS, "grok-imagine-image", ((), 200_000_000))
    out = io.StringIO()
    assert await check(settings_for(fake_xai, database_url=await sqlite_url(tmp_path)), out=out) is True
    report = out.getvalue()
    assert (
        "✓ image model grok-imagine-image: listed at $2000000.00 per image, ignored as implausible; "
        "$0.02 per image is charged"
    ) in report
    assert ": $2000000.00 per image" not in report  # never shown as the price


async def test_platform_checks_are_written_after_the_core_and_their_failure_fails_the_check(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    async def good(settings: Settings) -> list[CheckLine]:
        return [CheckLine(True, f"platform A for {settings.grokbot_model}"), CheckLine(None, "a note")]

    async def bad(_settings: Settings) -> list[CheckLine]:
        return [CheckLine(False, "platform B refused its token", "set B_TOKEN")]

    settings = settings_for(fake_xai, database_url=await sqlite_url(tmp_path))
    out = io.StringIO()
    assert await check(settings, out=out, platforms=(good,)) is True  # a note is not a failure
    assert out.getvalue().endswith("✓ platform A for grok-4.3\n– a note\n")
    out = io.StringIO()
    assert await check(settings, out=out, platforms=(good, bad)) is False
    assert out.getvalue().endswith("✗ platform B refused its token\n  → set B_TOKEN\n")


async def test_check_names_a_model_the_key_cannot_use(fake_xai: FakeXAI, tmp_path: Path) -> None:
    out = io.StringIO()
    url = await sqlite_url(tmp_path)
    settings = settings_for(fake_xai, database_url=url, grokbot_model="grok-imaginary-9")
    assert await check(settings, out=out) is False
    assert "✗ chat model 'grok-imaginary-9' is not available" in out.getvalue()


async def test_check_reports_an_unreachable_database(fake_xai: FakeXAI) -> None:
    out = io.StringIO()
    settings = settings_for(fake_xai, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert await check(settings, out=out) is False
    assert "✗ database unreachable" in out.getvalue()


async def test_usage_report_reads_the_ledger(fake_xai: FakeXAI, tmp_path: Path) -> None:
    settings = settings_for(fake_xai, database_url=await sqlite_url(tmp_path))
    text = await usage_report(settings, since="2026-01-01", user=None, fmt="csv")
    assert text.splitlines()[0].startswith("platform")


async def test_check_says_whether_the_endpoint_serves_the_responses_api(
    fake_xai: FakeXAI, tmp_path: Path
) -> None:
    url = await sqlite_url(tmp_path)
    served = io.StringIO()
    assert await check(settings_for(fake_xai, database_url=url, grokbot_xai_api="responses"), out=served)
    assert "✓ the endpoint serves the Responses API (/v1/responses)" in served.getvalue()
    fake_xai.serve_responses = False  # an xAI-compatible endpoint with Chat Completions only
    missing = io.StringIO()
    assert not await check(settings_for(fake_xai, database_url=url, grokbot_xai_api="responses"), out=missing)
    assert "✗ the endpoint does not serve the Responses API (/v1/responses)" in missing.getvalue()
    assert "→ set GROKBOT_XAI_API=chat" in missing.getvalue()
    told = io.StringIO()
    assert await check(settings_for(fake_xai, database_url=url, grokbot_xai_api="chat"), out=told)
    assert "– answers use Chat Completions (GROKBOT_XAI_API=chat)" in told.getvalue()
