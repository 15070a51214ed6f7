"""The HTTP server on $PORT: liveness (/healthz), readiness (/readyz), Prometheus metrics (/metrics),
and whatever routes adapters mount before it starts (the Slack adapter's POST /slack/events).

    web = WebServer(port=settings.port, checks={"database": database_check(db_engine)})
    SlackAdapter(settings, engine, web=web)        # mounts /slack/events, adds the "slack" check
    await web.start(); ...; await web.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHECK_TIMEOUT_S = 2.0
# The classic text format: what generate_latest writes, and what every Prometheus version reads.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def database_check(engine: AsyncEngine) -> Check:
    """A readiness check that the database answers `SELECT 1`."""

    async def check() -> bool:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    return check


class WebServer:
    """One aiohttp application; routes and checks are added before `start()`."""

    def __init__(
        self,
        *,
        port: int,
        host: str = "0.0.0.0",
        checks: Mapping[str, Check] | None = None,
        registry: CollectorRegistry | None = None,
        check_timeout: float = CHECK_TIMEOUT_S,
    ) -> None:
        self._host = host
        self._port = port
        self._checks: dict[str, Check] = dict(checks or {})
        self._check_timeout = check_timeout
        # Metrics of this server and of the adapters mounted on it. /metrics also shows the
        # process-wide default registry (process and platform collectors, core metrics).
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "grokbot_http_requests",
            "HTTP requests served, by route and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "grokbot_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.app = web.Application(middlewares=[self._measure])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.stopping = False  # the process is stopping: /readyz answers 503 without its checks

    # -- composition ----------------------------------------------------------------------------

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Mount an adapter's route; only before `start()`."""
        if self._runner is not None:
            raise RuntimeError("routes must be added before the server starts")
        self.app.router.add_route(method, path, handler)

    def add_check(self, name: str, check: Check) -> None:
        """Register a readiness check: an async callable answering True when `name` is usable."""
        self._checks[name] = check

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        if self._site is not None and self._runner is not None:
            for address in self._runner.addresses:
                if isinstance(address, tuple) and len(address) >= 2:
                    return int(address[1])
        return self._port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in {"0.0.0.0", "::", ""} else self._host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        log.info("HTTP server listening on port %d", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    # -- handlers -------------------------------------------------------------------------------

    @web.middleware
    async def _measure(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self._requests.labels(route, request.method, str(status)).inc()
            self._latency.labels(route).observe(time.perf_counter() - started)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    def stop_serving_traffic(self) -> None:
        """From now on /readyz says 503, so that load balancers send no new work here."""
        self.stopping = True

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.stopping:
            return web.json_response({"status": "stopping", "checks": {}}, status=503)
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_check(name) for name in names))
        checks = dict(zip(names, results, strict=True))
        ready = all(result == "ok" for result in results)
        body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    async def _run_check(self, name: str) -> str:
        try:
            async with asyncio.timeout(self._check_timeout):
                ok = await self._checks[name]()
        except TimeoutError:
            log.warning("readiness check %s timed out", name)
            return "timeout"
        except Exception as exc:  # noqa: BLE001 - a failing dependency is an answer, not a crash
            log.warning("readiness check %s failed: %s", name, type(exc).__name__)
            return f"error: {type(exc).__name__}"
        return "ok" if ok else "failing"

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        if self.registry is not REGISTRY:
            body += generate_latest(REGISTRY)
        response = web.Response(body=body)
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response
