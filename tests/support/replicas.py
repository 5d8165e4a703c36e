"""Two replicas of the server in this process, on one database, each a real uvicorn on its own port and
started with its own address as ``DCP_REPLICA_URL``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from dcp.app import create_app
from dcp.billing.invariants import all_problems
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.kit.clock import ManualClock
from tests.conftest import LiveServer, empty_tables, serving
from tests.support.factories import register_provider
from tests.support.fake_engine import FakeEngine
from tests.support.postgres import free_port


@dataclass
class Replicas:
    a: LiveServer
    b: LiveServer
    engines: list[FakeEngine] = field(default_factory=list)

    async def link(self, server: LiveServer, **kwargs: Any) -> FakeEngine:
        """A new serving provider whose link lands on ``server``."""
        async with httpx.AsyncClient(base_url=server.url) as http:
            provider = await register_provider(http)
        engine = await FakeEngine(server.url, provider, **kwargs).start()
        self.engines.append(engine)
        return engine


@asynccontextmanager
async def two_replicas(
    settings: Settings, database: Database, clock: ManualClock, *, redis_url: str = ""
) -> AsyncIterator[Replicas]:
    """Replicas a and b; with ``redis_url`` they share limits and job events through it. The ledger's
    invariants are checked once both stopped."""
    await empty_tables(database)
    async with AsyncExitStack() as stack:
        servers = []
        for _ in range(2):
            url = f"http://127.0.0.1:{(port := free_port())}"
            own = settings.model_copy(update={"replica_url": url, "public_url": url, "redis_url": redis_url})
            app = create_app(own, db=database, clock=clock)
            servers.append(await stack.enter_async_context(serving(app, port)))
        both = Replicas(*servers)
        try:
            yield both
        finally:
            for engine in both.engines:
                await engine.stop()
    async with database.reader() as session:
        assert await all_problems(session) == []
