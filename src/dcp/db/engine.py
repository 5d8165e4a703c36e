"""Engines and session factories; SQLite runs in WAL mode and takes its write lock up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

_WRITE = "dcp_write"


@dataclass(frozen=True)
class Database:
    """The engine and two session factories: reads, and writes (which lock SQLite at BEGIN)."""

    engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        await self.engine.dispose()


def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
    else:
        # pre_ping replaces connections a database restart closed; the connect timeout bounds how long
        # a request waits for an unreachable server before it is answered 503 (asyncpg waits 60 s).
        engine = create_async_engine(
            url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"timeout": 10}
        )
    write_engine = engine.execution_options(**{_WRITE: True})
    return Database(
        engine=engine,
        reader=async_sessionmaker(engine, expire_on_commit=False),
        writer=async_sessionmaker(write_engine, expire_on_commit=False),
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling is turned off so that BEGIN is ours to emit: a writing
    # request takes the write lock at BEGIN IMMEDIATE, so two requests can never both read a
    # balance and then both spend it (a deferred transaction would fail to upgrade instead).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
