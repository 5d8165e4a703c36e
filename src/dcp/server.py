"""uvicorn as DCP runs it (``dcp serve``, ``dcp up``): stopping first ends the live job streams."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from dcp.jobs.events import EventHub


class Server(uvicorn.Server):
    """Before it stops, uvicorn waits for every response under way to end. A follower's stream of a job
    waiting in the queue never ends by itself, so one open job page held a restart (SIGTERM, Ctrl-C) for
    good. The streams now end as the server starts to stop; a follower reconnects (to another replica, or
    to this one restarted) and reads the job afresh."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(uvicorn.Config(app, **options))
        self.hub: EventHub = app.state.hub

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.hub.end_streams()
        await super().shutdown(sockets)
