"""The admin pages over HTTP, on SQLite and PostgreSQL: sign-in, sessions, CSRF, escaping,
secrets, limits, digests, deferred answers and CSV."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from bot.admin import Admin
from bot.db import Sessions
from bot.reports import render, usage_rows
from bot.tables import DeferredRequest, DigestSchedule
from tests.admin.admin_env import ADMIN, SECRET_KEY, USD, days_ago, serve

PAGES = ("/admin/", "/admin/users", "/admin/users.csv", "/admin/workspaces", "/admin/workspaces.csv",
         "/admin/digests", "/admin/digests.csv", "/admin/deferred", "/admin/deferred.csv",
         "/admin/users/slack/T1/U1", "/admin/users/slack/T1/U1/requests.csv")  # fmt: skip


async def test_every_page_answers_401_without_a_session(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        for path in PAGES:
            async with http.get(path) as response:
                assert response.status == 401, path
                assert "Sign in with the link" in await response.text()
        async with http.post("/admin/users/slack/T1/U1/limits", data={"daily_usd": "5"}) as response:
            assert response.status == 401
        async with http.get("/admin/", cookies={"grokbot_admin": "forged"}) as response:
            assert response.status == 401


async def test_a_link_signs_in_once_and_an_expired_link_is_refused(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        token = await env.link_token()
        async with http.get(f"/admin/signin/{token}") as response:  # the page alone uses nothing
            assert response.status == 200
            assert response.headers["Referrer-Policy"] == "no-referrer"
        async with http.post("/admin/signin", data={"token": token}) as response:
            assert response.status == 200 and "<h1>Overview</h1>" in await response.text()
        async with env.client() as other, other.post("/admin/signin", data={"token": token}) as response:
            assert response.status == 403
            assert "used already or has expired" in await response.text()

        late = await env.link_token()
        env.clock.now += timedelta(minutes=10, seconds=1)
        async with env.client() as other, other.post("/admin/signin", data={"token": late}) as response:
            assert response.status == 403


async def test_the_cookie_is_httponly_strict_and_secure_behind_https(sessions: Sessions) -> None:
    for public_url, secure in (("http://127.0.0.1", False), ("https://bot.example.com", True)):
        async with serve(sessions, grokbot_public_url=public_url) as env, env.client() as http:
            token = await env.link_token()
            async with http.post("/admin/signin", data={"token": token}, allow_redirects=False) as response:
                cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
            assert ("Secure" in cookie) is secure
            assert token not in cookie  # the session's own token, not the link's


async def test_a_session_ends_after_12_idle_hours_and_with_revoke_all(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.sign_in(http)
        env.clock.now += timedelta(hours=11, minutes=59)
        async with http.get("/admin/users") as response:
            assert response.status == 200  # and the idle time starts again
        env.clock.now += timedelta(hours=11, minutes=59)
        async with http.get("/admin/users") as response:
            assert response.status == 200
        env.clock.now += timedelta(hours=12, seconds=1)
        async with http.get("/admin/users") as response:
            assert response.status == 401

        await env.sign_in(http)
        assert await env.signins.revoke_all() == 1
        async with http.get("/admin/users") as response:
            assert response.status == 401


async def test_sign_out_ends_the_session(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.sign_in(http)
        csrf = await env.csrf(http)
        async with http.post("/admin/signout", data={"csrf": csrf}) as response:
            assert "You are signed out" in await response.text()
        async with http.get("/admin/") as response:
            assert response.status == 401


async def test_a_form_without_its_csrf_token_is_refused(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.sign_in(http)
        for data in ({"daily_usd": "5"}, {"daily_usd": "5", "csrf": "0" * 64}):
            async with http.post("/admin/users/slack/T1/U1/limits", data=data) as response:
                assert response.status == 403
        limits = await env.quotas.limits_for(_subject("U1"))
        assert limits.daily_ticks == USD  # the default $1.00, unchanged


async def test_limits_are_edited_by_the_quota_commands_rules(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.sign_in(http)
        csrf = await env.csrf(http, "/admin/users/slack/T1/U1")
        form = {"csrf": csrf, "daily_usd": "2.50", "monthly_usd": "", "images": "3"}
        async with http.post("/admin/users/slack/T1/U1/limits", data=form) as response:
            assert response.status == 200 and "Saved." in await response.text()
        limits = await env.quotas.limits_for(_subject("U1"))
        assert (limits.daily_ticks, limits.monthly_ticks, limits.daily_images) == (
            25 * USD // 10,
            10 * USD,
            3,
        )

        for bad in ({"daily_usd": "-1"}, {"monthly_usd": "100001"}, {"images": "two"}, {}):
            async with http.post("/admin/users/slack/T1/U1/limits", data={"csrf": csrf, **bad}) as response:
                assert response.status == 400
                assert 'role="alert"' in await response.text()
        assert await env.quotas.limits_for(_subject("U1")) == limits

        async with http.post(
            "/admin/users/slack/T1/U1/limits", data={"csrf": csrf, "reset": "1"}
        ) as response:
            assert response.status == 200
        assert (await env.quotas.limits_for(_subject("U1"))).daily_ticks == USD


async def test_a_name_holding_a_script_is_shown_escaped(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.charge(days_ago(env.clock, 0), user="U666")
        await env.said("U666", "<script>alert('pwned')</script>")
        await env.sign_in(http)
        for path in ("/admin/users", "/admin/users/slack/T1/U666"):
            async with http.get(path) as response:
                page = await response.text()
            assert "&lt;script&gt;alert(" in page, path
            assert "<script>alert" not in page, path
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_no_secret_appears_in_any_page(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.charge(days_ago(env.clock, 1))
        await env.sign_in(http)
        session_token = next(c.value for c in http.cookie_jar if c.key == "grokbot_admin")
        for path in PAGES:
            async with http.get(path) as response:
                body = await response.text()
            assert response.status == 200, path
            for secret in (SECRET_KEY, "xoxb-SECRET", "SECRET.discord", session_token):
                assert secret not in body, (path, secret)


async def test_users_csv_has_the_columns_and_rows_of_grokbot_usage(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        for n, user in enumerate(("U1", "U2", "U3")):
            await env.charge(days_ago(env.clock, 0, hours=1), user=user, ticks=(n + 1) * USD // 10)
        await env.charge(days_ago(env.clock, 40), user="U4")  # before this month
        await env.sign_in(http)
        async with http.get("/admin/users.csv?period=month") as response:
            assert response.headers["Content-Disposition"].startswith("attachment")
            text = await response.text()
        since = env.clock().replace(day=1, hour=0)
        assert text == render(await usage_rows(sessions, since=since), "csv")
        assert text.splitlines()[0].startswith("platform,workspace,user_id,requests,prompt_tokens")
        assert [line.split(",")[2] for line in text.splitlines()[1:]] == ["U3", "U2", "U1"]


async def test_an_admin_vouched_for_by_the_platform_sees_only_their_workspace(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.charge(days_ago(env.clock, 0), user="U1", workspace="T1")
        await env.charge(days_ago(env.clock, 0), user="U9", workspace="T9")
        await env.sign_in(http, Admin("slack", "UOWNER", "T9"))
        async with http.get("/admin/users.csv") as response:
            users = [line.split(",")[2] for line in (await response.text()).splitlines()[1:]]
        assert users == ["U9"]
        async with http.get("/admin/users/slack/T1/U1") as response:
            assert response.status == 404
        csrf = await env.csrf(http)
        async with http.post(
            "/admin/users/slack/T1/U1/limits", data={"csrf": csrf, "daily_usd": "9"}
        ) as response:
            assert response.status == 404
        assert (await env.quotas.limits_for(_subject("U1"))).daily_ticks == USD


async def test_digests_are_listed_paused_resumed_and_removed(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        digest_id = await _digest(env.sessions, env.clock())
        await env.sign_in(http)
        async with http.get("/admin/digests") as response:
            assert "0 9 * * 1-5" in await response.text()
        csrf = await env.csrf(http, "/admin/digests")
        async with http.post(f"/admin/digests/{digest_id}/pause", data={"csrf": csrf}) as response:
            assert "paused" in await response.text()
        async with http.post(f"/admin/digests/{digest_id}/resume", data={"csrf": csrf}) as response:
            assert "Pause" in await response.text()
        async with http.post(f"/admin/digests/{digest_id}/remove", data={"csrf": csrf}) as response:
            assert "No digests are scheduled" in await response.text()
        async with http.post(f"/admin/digests/{digest_id}/remove", data={"csrf": csrf}) as response:
            assert response.status == 404


async def test_deferred_answers_are_listed_by_state_with_ages(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        now = env.clock()
        async with env.sessions.begin() as session:
            for n, (status, age) in enumerate((("pending", 90), ("delivered", 7200), ("failed", 3 * 86400))):
                created = now - timedelta(seconds=age)
                session.add(DeferredRequest(
                    xai_request_id=f"r{n}", platform="slack", workspace="T1", channel="C1", user_id="U1",
                    model="grok-4.3", status=status, next_poll_at=created, created_at=created,
                    expires_at=created + timedelta(hours=24),
                ))  # fmt: skip
        await env.sign_in(http)
        async with http.get("/admin/deferred") as response:
            page = await response.text()
        for state, age in (("pending", "1 min"), ("delivered", "2 h"), ("failed", "3 d")):
            section = page.split(f"<h2>{state} (1)</h2>")[1].split("<h2>")[0]
            assert f">{age}<" in section, state
        async with http.get("/admin/deferred.csv") as response:
            rows = (await response.text()).splitlines()
        assert rows[0].endswith("age_s") and sorted(r.split(",")[-1] for r in rows[1:]) == [
            "259200",
            "7200",
            "90",
        ]


async def test_the_overview_shows_today_this_month_and_each_kinds_days(sessions: Sessions) -> None:
    async with serve(sessions) as env, env.client() as http:
        await env.charge(days_ago(env.clock, 0, hours=1), kind="chat", ticks=2 * USD)
        await env.charge(days_ago(env.clock, 0, hours=2), kind="deferred", ticks=USD)
        await env.charge(days_ago(env.clock, 3), kind="image", model="grok-imagine-image", ticks=USD)
        await env.charge(days_ago(env.clock, 30), kind="digest", ticks=USD)  # last month
        await env.sign_in(http)
        async with http.get("/admin/") as response:
            page = await response.text()
        figures = re.findall(r'<div class="figure">([^<]+)</div>', page)
        assert figures == ["$3.00", "$4.00"]  # today; this month (26 November)
        kinds = json.loads(re.search(r'id="chart-kinds">(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
        datasets = {d["label"]: d["data"] for d in kinds["data"]["datasets"]}
        assert list(datasets) == ["chat", "images", "digests"]
        assert len(kinds["data"]["labels"]) == 90 and kinds["data"]["labels"][-1] == "2026-11-26"
        assert (
            datasets["chat"][-1] == 3.0 and datasets["images"][-4] == 1.0 and datasets["digests"][-31] == 1.0
        )
        assert sum(datasets["chat"]) == 3.0
        assert "Rate-limit pauses" in page and "built-in table" in page


def _subject(user: str):  # type: ignore[no-untyped-def]
    from bot.quotas import Subject

    return Subject("slack", "T1", user)


async def _digest(sessions: Sessions, now):  # type: ignore[no-untyped-def]
    async with sessions.begin() as session:
        row = DigestSchedule(platform="slack", workspace="T1", channel="C1", post_channel="C1",
                             cron_expr="0 9 * * 1-5", timezone="UTC", next_run_at=now + timedelta(hours=1),
                             created_by=ADMIN.user_id, created_at=now)  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id
