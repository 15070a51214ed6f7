"""The HTTP server: liveness, readiness with per-dependency answers, Prometheus metrics, mounted routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine
from bot.web import WebServer, database_check


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(server: WebServer) -> WebServer:
    await server.start()
    return server


async def test_healthz_answers_without_checks(client: aiohttp.ClientSession) -> None:
    server = await started(WebServer(port=0, host="127.0.0.1"))
    try:
        async with client.get(f"{server.url}/healthz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    finally:
        await server.stop()


async def test_readyz_reports_each_check(client: aiohttp.ClientSession, engine: AsyncEngine) -> None:
    healthy = True

    async def slack() -> bool:
        return healthy

    async def broken() -> bool:
        raise ConnectionError("down")

    server = WebServer(port=0, host="127.0.0.1", checks={"database": database_check(engine)})
    server.add_check("slack", slack)
    await server.start()
    try:
        async with client.get(f"{server.url}/readyz") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "checks": {"database": "ok", "slack": "ok"}}
        healthy = False
        server.add_check("other", broken)
        async with client.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["status"] == "unavailable"
        assert body["checks"] == {"database": "ok", "slack": "failing", "other": "error: ConnectionError"}
    finally:
        await server.stop()


async def test_readyz_fails_when_the_database_is_unreachable(client: aiohttp.ClientSession) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none", pool_size=1)
    server = await started(WebServer(port=0, host="127.0.0.1", checks={"database": database_check(engine)}))
    try:
        async with client.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            body = await response.json()
        assert body["checks"]["database"].startswith(("error", "timeout"))
    finally:
        await server.stop()
        await engine.dispose()


async def test_a_slow_check_times_out(client: aiohttp.ClientSession) -> None:
    async def slow() -> bool:
        await asyncio.sleep(5)
        return True

    server = await started(WebServer(port=0, host="127.0.0.1", checks={"slow": slow}, check_timeout=0.05))
    try:
        async with client.get(f"{server.url}/readyz") as response:
            assert response.status == 503
            assert (await response.json())["checks"] == {"slow": "timeout"}
    finally:
        await server.stop()


async def test_mounted_routes_and_metrics(client: aiohttp.ClientSession) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi " + (await request.text()))

    server = WebServer(port=0, host="127.0.0.1")
    server.add_route("POST", "/slack/events", hello)
    await server.start()
    try:
        async with client.post(f"{server.url}/slack/events", data=b"there") as response:
            assert response.status == 200
            assert await response.text() == "hi there"
        async with client.get(f"{server.url}/nowhere") as response:
            assert response.status == 404
        async with client.get(f"{server.url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            metrics = await response.text()
        assert 'grokbot_http_requests_total{method="POST",route="/slack/events",status="200"} 1.0' in metrics
        assert 'route="unmatched",status="404"' in metrics
        assert "grokbot_http_request_seconds_bucket" in metrics
        assert "process_cpu_seconds_total" in metrics  # the process-wide default registry too
    finally:
        await server.stop()


async def test_routes_cannot_be_added_after_start() -> None:
    server = await started(WebServer(port=0, host="127.0.0.1"))
    try:
        with pytest.raises(RuntimeError):
            server.add_route("GET", "/late", lambda request: web.Response())  # type: ignore[arg-type,return-value]
    finally:
        await server.stop()
