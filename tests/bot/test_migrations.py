"""Migrations: upgrade head on an empty database, no drift from the models, downgrade base."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot
from bot.db import MIGRATIONS_DIR, create_engine, downgrade, upgrade


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[list[object], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
            tables = await connection.run_sync(_tables)
    finally:
        await engine.dispose()
    return diff, tables


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("postgres_url")
    downgrade(url, "base")  # the session database arrives migrated; start from nothing
    return url


async def _sql(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


def _deferred_columns(url: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                columns = await connection.run_sync(lambda c: inspect(c).get_columns("deferred_request"))
        finally:
            await engine.dispose()
        return {column["name"]: column for column in columns}

    return asyncio.run(read())


def test_dropping_deferred_reply_to_keeps_the_requests_in_flight_both_ways(empty_db_url: str) -> None:
    """0002 drops deferred_request.reply_to; on SQLite batch mode copies the table, rows included."""
    upgrade(empty_db_url, "0001")
    try:
        asyncio.run(
            _sql(
                empty_db_url,
                "INSERT INTO deferred_request (xai_request_id, platform, workspace, channel, thread, user_id,"
                " reply_to, model, status, attempts, next_poll_at, result_json, created_at, expires_at)"
                " VALUES ('r1', 'discord', 'g1', 'c1', '', 'alice', 'u1', 'grok-4.3', 'delivering', 2,"
                ' CURRENT_TIMESTAMP, \'{"parts": ["hi"]}\', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)',
            )
        )
        kept = "SELECT xai_request_id, status, attempts, result_json FROM deferred_request"
        upgrade(empty_db_url)
        assert "reply_to" not in _deferred_columns(empty_db_url)
        assert asyncio.run(_sql(empty_db_url, kept)) == [("r1", "delivering", 2, '{"parts": ["hi"]}')]
        downgrade(empty_db_url, "0001")
        assert _deferred_columns(empty_db_url)["reply_to"]["default"] is None  # as 0001 made it
        assert asyncio.run(_sql(empty_db_url, kept)) == [("r1", "delivering", 2, '{"parts": ["hi"]}')]
        assert asyncio.run(_sql(empty_db_url, "SELECT reply_to FROM deferred_request")) == [("",)]
    finally:
        downgrade(empty_db_url, "base")
        upgrade(empty_db_url)  # leave the shared session database as other tests expect it


def test_upgrade_head_matches_models_and_downgrade_base_empties(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    diff, tables = asyncio.run(_inspect(empty_db_url))
    assert diff == [], f"models and migrations differ: {diff}"
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables

    downgrade(empty_db_url, "base")
    _, tables = asyncio.run(_inspect(empty_db_url))
    assert tables <= {"alembic_version"}

    upgrade(empty_db_url)  # leave the shared session database as other tests expect it


async def test_tick_columns_hold_more_than_32_bits(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as connection:
            big = 50 * 10_000_000_000  # $50 in ticks, far past 2^31
            await connection.execute(
                text(
                    'INSERT INTO quota_counter (subject, period_key, used, "limit", updated_at) '
                    "VALUES ('user:x', 'all', :big, :big, CURRENT_TIMESTAMP)"
                ),
                {"big": big},
            )
            stored = (await connection.execute(text("SELECT used FROM quota_counter"))).scalar()
    finally:
        await engine.dispose()
    assert stored == big


def test_the_migrations_ship_inside_the_package() -> None:
    # A wheel carries only the packages: migrations outside `bot/` are missing from `pip install .`.
    package = Path(bot.__file__).resolve().parent
    assert MIGRATIONS_DIR.is_relative_to(package)
    assert (MIGRATIONS_DIR / "env.py").is_file() and any((MIGRATIONS_DIR / "versions").glob("0*.py"))


async def test_a_database_behind_the_shipped_migrations_is_reported_with_the_fix(tmp_path: Path) -> None:
    from bot.db import database_report, schema_state, upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade_async(url)
    assert (await schema_state(url)).up_to_date
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    finally:
        await engine.dispose()
    state = await schema_state(url)
    assert not state.up_to_date and state.current == ("0000_older",)
    good, line = await database_report(url)
    assert not good
    assert "0000_older" in line and "grokbot migrate" in line
