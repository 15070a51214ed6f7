"""`grokbot check` and `grokbot usage` over the xAI fake and a real database."""

from __future__ import annotations

import io
from pathlib import Path

from bot.db import upgrade_async
from bot.services import check, usage_report
from tests.bot.engine_env import settings_for
from tests.fakes.xai import FakeXAI


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
    assert "✓ Responses API (/v1/responses) served" in served.getvalue()
    fake_xai.serve_responses = False  # an xAI-compatible endpoint with Chat Completions only
    missing = io.StringIO()
    assert not await check(settings_for(fake_xai, database_url=url, grokbot_xai_api="responses"), out=missing)
    assert "✗ this endpoint does not serve /v1/responses: set GROKBOT_XAI_API=chat" in missing.getvalue()
    told = io.StringIO()
    assert await check(settings_for(fake_xai, database_url=url, grokbot_xai_api="chat"), out=told)
    assert "✓ answers use Chat Completions (GROKBOT_XAI_API=chat)" in told.getvalue()
