"""Errors of the provider domain."""

from __future__ import annotations

from dcp.kit.errors import Conflict, NotFound


class EmailTaken(Conflict):
    def __init__(self) -> None:
        super().__init__("An account with this email already exists")


class ProviderNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Provider not found")
