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
    write_engine: AsyncEngine | None = None  # SQLite's own engine for writers; None where they share one

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not None:
            await self.write_engine.dispose()


def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        return _open_sqlite(url)
    # pre_ping replaces connections a database restart closed; the connect timeout bounds how long
    # a request waits for an unreachable server before it is answered 503 (asyncpg waits 60 s).
    engine = create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args={"timeout": 10}
    )
    return Database(
        engine=engine,
        reader=async_sessionmaker(engine, expire_on_commit=False),
        writer=async_sessionmaker(engine.execution_options(**{_WRITE: True}), expire_on_commit=False),
    )


def _open_sqlite(url: str) -> Database:
    """Readers share a pool; writers take turns on one connection of their own. SQLite lets one writer in
    at a time anyway, and one that finds the lock taken polls it with sleeps of up to 100 ms (busy_timeout):
    with many writers at once the lock then sat free between polls, and heartbeats fell from hundreds a
    second to a few dozen (bench heartbeat). Waiting for the connection instead is a FIFO queue in the
    event loop, and each writer starts the moment the one before it commits."""
    engine = create_async_engine(url, connect_args={"timeout": 30})
    write_engine = create_async_engine(
        url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=30
    )
    _configure_sqlite(engine)
    _configure_sqlite(write_engine)
    return Database(
        engine=engine,
        reader=async_sessionmaker(engine, expire_on_commit=False),
        writer=async_sessionmaker(write_engine.execution_options(**{_WRITE: True}), expire_on_commit=False),
        write_engine=write_engine,
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
