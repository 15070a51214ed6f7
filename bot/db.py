"""Database engines, sessions and migrations for SQLite (embedded default) and PostgreSQL, and
whether a database can be used: its SQLite folder writable, its schema at the migrations' head.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

Sessions = async_sessionmaker[AsyncSession]


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite with WAL, a busy timeout and foreign keys on every connection."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout waits for the writer's lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def conflict_insert(session: AsyncSession, table: type[SQLModel]) -> postgresql.Insert | sqlite.Insert:
    """INSERT with the dialect's ON CONFLICT clauses (SQLite and PostgreSQL spell them alike)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def session_factory(engine: AsyncEngine) -> Sessions:
    # expire_on_commit=False: reading attributes after commit must not lazy-load (MissingGreenlet).
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to `revision` (blocking; call from a thread inside an event loop).
    DatabaseUnusable when a SQLite file cannot be created or written where the URL puts it."""
    require_sqlite_folder(url)
    try:
        command.upgrade(alembic_config(url), revision)
    except OperationalError as exc:
        if sqlite_file(url) is None:
            raise
        # A read-only mount refuses even root, whom the folder check above lets through.
        raise DatabaseUnusable(f"SQLite cannot write {sqlite_file(url)}: {exc.orig}") from None


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


class DatabaseUnusable(Exception):
    """The database cannot be opened, or lacks grokbot's schema; `str()` says what to do."""


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (None for PostgreSQL and for in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def require_sqlite_folder(url: str) -> None:
    """DatabaseUnusable unless SQLite can create and write its file (and journal) where `url` says."""
    path = sqlite_file(url)
    if path is None:
        return
    folder = path.parent
    if not folder.is_dir():
        raise DatabaseUnusable(
            f"the folder {folder} of the SQLite database does not exist: create it, or point "
            "DATABASE_URL at a file in a folder that exists"
        )
    # WAL keeps two more files beside the database: the folder itself must be writable.
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DatabaseUnusable(
            f"SQLite cannot write in {folder}: the folder (or {path.name}) is read-only for this "
            "user. Point DATABASE_URL at a writable folder, e.g. sqlite+aiosqlite:////data/grokbot.db"
        )


@dataclass(frozen=True)
class SchemaState:
    """The revisions a database is at, beside the heads of the migrations this grokbot ships."""

    current: tuple[str, ...]
    heads: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.heads)

    def describe(self) -> str:
        """What the state means for the operator, naming `grokbot migrate` when it helps."""
        if not self.current:
            return "has no grokbot tables yet: run `grokbot migrate`"
        if self.up_to_date:
            return f"schema up to date ({', '.join(self.current)})"
        return (
            f"schema is at {', '.join(self.current)} but this grokbot needs {', '.join(self.heads)}: "
            "run `grokbot migrate` (a newer grokbot may have migrated it further)"
        )


async def schema_state(url: str) -> SchemaState:
    """Where the database's schema stands; never creates a SQLite file that is not there yet."""
    heads = tuple(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return SchemaState((), heads)
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_revisions)
    finally:
        await engine.dispose()
    return SchemaState(current, heads)


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


async def require_schema(url: str) -> None:
    """DatabaseUnusable unless the database exists and is migrated to head."""
    require_sqlite_folder(url)
    state = await schema_state(url)
    if not state.up_to_date:
        raise DatabaseUnusable(f"the database {state.describe()}")


async def database_report(url: str) -> tuple[bool, str]:
    """`grokbot check`'s line on the database: reachable with its schema at head (True), or why not."""
    backend = make_url(url).get_backend_name()
    try:
        require_sqlite_folder(url)
        state = await schema_state(url)
    except DatabaseUnusable as exc:
        return False, f"database unusable: {exc}"
    except (SQLAlchemyError, OSError) as exc:
        return False, f"database unreachable: {type(exc).__name__}"
    if state.up_to_date:
        return True, f"database reachable ({backend}), {state.describe()}"
    return False, f"database reachable ({backend}) but it {state.describe()}"
