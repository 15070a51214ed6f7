"""Shared fixtures: a migrated, empty database on SQLite and on PostgreSQL for every SQL test.

PostgreSQL: each test session creates its own database on the server named by
GROKBOT_TEST_POSTGRES_URL (default: the local server), migrates it once, and empties it between
tests. No server → those cases skip with the reason, unless GROKBOT_REQUIRE_POSTGRES=1.

Event loop: every async test runs on the loop grokbot runs on (bot.aio: uvloop where installed);
the network layer's own tests (tests/grok/test_net.py) run on asyncio's loop as well, since
grokbot falls back to it where uvloop is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import bot.tables  # noqa: F401
from bot.aio import loop_factory, loop_name
from bot.db import Sessions, create_engine, session_factory, upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "GROKBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("GROKBOT_REQUIRE_POSTGRES") == "1"


BOTH_LOOPS = ("tests/grok/test_net.py",)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    loops = {loop_name(): loop_factory()}
    if any(item.nodeid.startswith(path) for path in BOTH_LOOPS):
        loops["asyncio"] = asyncio.new_event_loop
    return loops


async def _admin_execute(statement: str) -> None:
    engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly created and migrated PostgreSQL database for this test session."""
    name = f"grokbot_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        reason = f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).host}: {exc!r}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"GROKBOT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """The URL of a migrated, empty database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "grokbot.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_url")
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    asyncio.run(_truncate(url, tables))
    yield url


async def _truncate(url: str, tables: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> Sessions:
    return session_factory(engine)


# The fake xAI server and a client wired to it, for every test module.
from tests.fakes.xai import fake_xai, grok  # noqa: E402, F401
