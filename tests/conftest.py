"""Shared fixtures: every test runs once on SQLite and once on a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from dcp.app import create_app
from dcp.billing.invariants import all_problems
from dcp.config import LimitSettings, Settings
from dcp.db.base import Base
from dcp.db.engine import Database, open_database
from dcp.db.migrate import upgrade
from dcp.kit.clock import ManualClock
from dcp.server import Server
from tests.support.postgres import free_port, running_postgres

ADMIN_TOKEN = "dc1-admin-" + "t" * 40
SECRET = "s" * 48
BACKENDS = os.environ.get("DCP_TEST_BACKENDS", "sqlite,postgres").split(",")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "dcp.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url
        return
    with running_postgres() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = open_database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Every test calls from one address with a handful of keys: abuse limits are out of the way unless a
    # test lowers them (tests/api/test_abuse_limits.py) on this same object, which the running app reads.
    unlimited = LimitSettings(
        requests_per_minute_per_key=1_000_000,
        requests_per_minute_per_ip=1_000_000,
        signups_per_hour_per_ip=1_000_000,
        sign_ins_per_minute_per_ip=1_000_000,
    )
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        admin_token=ADMIN_TOKEN,
        data_dir=tmp_path,
        limits=unlimited,
        # A test's heartbeats come one at a time: none waits for others to share its transaction
        # (tests/api/test_heartbeats.py tests the wait).
        heartbeat_batch_wait_seconds=0,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def client(
    settings: Settings, database: Database, clock: ManualClock
) -> AsyncIterator[httpx.AsyncClient]:
    await empty_tables(database)
    app = create_app(settings, db=database, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    async with database.reader() as session:
        problems = await all_problems(session)
    assert problems == [], f"ledger invariants broken: {problems}"


@pytest.fixture
def admin() -> dict[str, str]:
    return {"x-admin-token": ADMIN_TOKEN}


async def empty_tables(database: Database) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    async with database.writer() as session:
        if database.engine.dialect.name == "postgresql":
            names = ", ".join(table.name for table in tables)
            await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(table.delete())
        await session.commit()


@dataclass
class LiveServer:
    url: str
    app: FastAPI

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


@asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[LiveServer]:
    """``app`` served by a real uvicorn on a loopback ``port`` until the block ends."""
    server = Server(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live(settings: Settings, database: Database, clock: ManualClock) -> AsyncIterator[LiveServer]:
    """The app served by a real uvicorn on a loopback port (WebSocket link, SSE streams, the sweeper)."""
    await empty_tables(database)
    port = free_port()
    settings.public_url = f"http://127.0.0.1:{port}"
    async with serving(create_app(settings, db=database, clock=clock), port) as server:
        yield server
    async with database.reader() as session:
        problems = await all_problems(session)
    assert problems == [], f"ledger invariants broken: {problems}"
