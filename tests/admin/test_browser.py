"""The admin pages in the distribution's headless Chromium, driven by Playwright (no browser is
downloaded: the test skips, with the reason, where /usr/bin/chromium is missing, and .ci/run
installs it). SQLite only: the pages' queries run on both databases in test_pages.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bot.admin import SignIns
from bot.db import Sessions
from bot.reports import render, usage_rows
from tests.admin.admin_env import ADMIN, USD, AdminEnv, days_ago, serve

CHROMIUM = os.environ.get("GROKBOT_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
playwright = pytest.importorskip("playwright.async_api")


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "grokbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with playwright.async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@asynccontextmanager
async def _other_site(link: str) -> AsyncIterator[str]:
    """A page on another site (localhost, where the admin pages are on 127.0.0.1) linking to `link`."""
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text=f'<a id="go" href="{link}">open the admin pages</a>', content_type="text/html"
        )

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://localhost:{port}/"
    finally:
        await runner.cleanup()


async def _signed_in_page(env: AdminEnv, browser: object) -> object:
    context = await browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page = await context.new_page()
    token = await env.link_token()
    await page.goto(f"{env.url}/admin/signin/{token}")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{env.url}/admin/")
    return page


async def test_a_link_clicked_on_another_site_signs_in_and_the_session_holds(
    sessions: Sessions, browser: object
) -> None:
    async with serve(sessions) as env:
        token = await env.link_token()
        async with _other_site(f"{env.url}/admin/signin/{token}") as origin:
            context = await browser.new_context()  # type: ignore[attr-defined]
            page = await context.new_page()
            await page.goto(origin)
            await page.click("#go")  # a cross-site navigation, as from Slack or Discord
            await page.wait_for_url(f"{env.url}/admin/signin/{token}")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{env.url}/admin/")
            assert await page.text_content("h1") == "Overview"
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["grokbot_admin"]["httpOnly"] and cookies["grokbot_admin"]["sameSite"] == "Strict"
            assert not cookies["grokbot_admin"]["secure"]  # GROKBOT_PUBLIC_URL is http here
            await page.click("nav >> text=Users")  # a later same-site request carries the cookie
            assert await page.text_content("h1") == "Users"
            # A second click on the link is refused: the link was good once.
            await page.goto(origin)
            await page.click("#go")
            await page.click("button[type=submit]")
            assert "used already or has expired" in (await page.text_content("main") or "")


async def test_the_kinds_chart_draws_one_bar_per_seeded_day(sessions: Sessions, browser: object) -> None:
    async with serve(sessions) as env:
        chat_days, image_days = (0, 1, 2, 5, 8, 13, 21), (3, 34, 55)
        for day in chat_days:
            await env.charge(days_ago(env.clock, day), kind="chat", ticks=USD // 2)
        for day in image_days:
            await env.charge(days_ago(env.clock, day), kind="image", model="grok-imagine-image", ticks=USD)
        page = await _signed_in_page(env, browser)
        drawn = await page.evaluate(  # type: ignore[attr-defined]
            """() => {
                const chart = Chart.getChart(document.querySelector('canvas[data-chart=kinds]'));
                return chart.data.datasets.map((d, i) => [d.label, chart.data.labels.length,
                    chart.getDatasetMeta(i).data.filter(bar => Math.abs(bar.base - bar.y) > 0.5).length]);
            }"""
        )
        assert drawn == [["chat", 90, len(chat_days)], ["images", 90, len(image_days)]]
        # Not a blank canvas: the chat bars' blue is there in the pixels.
        blue = await page.evaluate(  # type: ignore[attr-defined]
            """() => {
                const canvas = document.querySelector('canvas[data-chart=kinds]');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let n = 0;
                for (let i = 0; i < data.length; i += 4)
                    if (data[i] === 0 && data[i + 1] === 114 && data[i + 2] === 178) n++;
                return n;
            }"""
        )
        assert blue > 100
        screenshot = os.environ.get("GROKBOT_ADMIN_SCREENSHOT")
        if screenshot:  # docs/admin-overview.png is taken this way
            await page.set_viewport_size({"width": 1100, "height": 1250})  # type: ignore[attr-defined]
            await page.screenshot(path=screenshot)  # type: ignore[attr-defined]


async def test_a_users_limit_is_edited_in_the_browser(sessions: Sessions, browser: object) -> None:
    async with serve(sessions) as env:
        await env.charge(days_ago(env.clock, 0), user="U7")
        page = await _signed_in_page(env, browser)
        await page.goto(f"{env.url}/admin/users")  # type: ignore[attr-defined]
        await page.click("text=U7")  # type: ignore[attr-defined]
        await page.fill("input[name=daily_usd]", "3.75")  # type: ignore[attr-defined]
        await page.fill("input[name=images]", "4")  # type: ignore[attr-defined]
        await page.click("button[name=save]")  # type: ignore[attr-defined]
        assert "Saved." in (await page.text_content("main") or "")  # type: ignore[attr-defined]
        from bot.quotas import Subject

        limits = await env.quotas.limits_for(Subject("slack", "T1", "U7"))
        assert (limits.daily_ticks, limits.daily_images) == (375 * USD // 100, 4)
        assert "$3.75 a day" in (await page.text_content("main") or "")  # type: ignore[attr-defined]


async def test_the_users_table_downloads_as_csv(sessions: Sessions, browser: object, tmp_path: Path) -> None:
    async with serve(sessions) as env:
        for user, ticks in (("U1", USD), ("U2", 3 * USD)):
            await env.charge(days_ago(env.clock, 0), user=user, ticks=ticks)
        page = await _signed_in_page(env, browser)
        await page.goto(f"{env.url}/admin/users")  # type: ignore[attr-defined]
        async with page.expect_download() as waiting:  # type: ignore[attr-defined]
            await page.click("text=Download CSV")  # type: ignore[attr-defined]
        download = await waiting.value
        path = tmp_path / download.suggested_filename
        await download.save_as(path)
        since = env.clock().replace(day=1, hour=0)
        assert path.read_text() == render(await usage_rows(sessions, since=since), "csv")
        assert download.suggested_filename == "grokbot-users-month.csv"


async def test_a_link_is_refused_after_ten_minutes_in_the_browser(
    sessions: Sessions, browser: object
) -> None:
    async with serve(sessions) as env:
        token = await SignIns(sessions, clock=env.clock).issue_link(ADMIN)
        env.clock.now += timedelta(minutes=11)
        context = await browser.new_context()  # type: ignore[attr-defined]
        page = await context.new_page()
        await page.goto(f"{env.url}/admin/signin/{token}")
        await page.click("button[type=submit]")
        assert "used already or has expired" in (await page.text_content("main") or "")
        assert not [c for c in await context.cookies() if c["name"] == "grokbot_admin"]
