"""Errors of the renter domain."""

from __future__ import annotations

from dcp.kit.errors import Conflict, NotFound


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists")


class RenterNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Renter not found")
