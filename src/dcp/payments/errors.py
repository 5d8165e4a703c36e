"""Errors of online payments."""

from __future__ import annotations

from dcp.kit.errors import AppError, Conflict, NotFound, Unauthorized


class TopupsDisabled(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "Online top-ups are not enabled on this server; ask an operator to credit your balance"
        )


class GatewayUnavailable(AppError):
    status = 502

    def __init__(self) -> None:
        super().__init__("The payment gateway is unavailable; nothing was charged, try again shortly")


class BadWebhookSecret(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid webhook secret")


class UnknownTopup(NotFound):
    def __init__(self) -> None:
        super().__init__("No top-up matches this payment")
