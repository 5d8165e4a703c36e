"""The unit of work: one session per request, committed when the endpoint returns, rolled back on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.db.engine import Database

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    factory = db.reader if request.method in _READ_METHODS else db.writer
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit happens when the endpoint returns, before any byte of the response is
# sent, so a client never sees success for work that was not committed.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def end_transaction(session: AsyncSession) -> None:
    """Commit what the request did so far, before it waits on the network: no lock is held while it
    waits (on SQLite a writing request holds the database's write lock until its transaction ends).
    The session starts a new transaction on its next statement."""
    await session.commit()
