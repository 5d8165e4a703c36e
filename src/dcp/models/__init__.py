"""ORM tables, one module per aggregate; importing this package registers them all."""

from dcp.models.allowance import GatewayAllowance
from dcp.models.audit import AuditEvent
from dcp.models.job import Job
from dcp.models.ledger import LedgerAccount, LedgerEntry, LedgerTransaction
from dcp.models.model_price import ModelPrice
from dcp.models.provider import Provider, ProviderHeartbeat, ProviderUptime
from dcp.models.renter import Renter
from dcp.models.settlement import Settlement
from dcp.models.topup import Topup
from dcp.models.usage import GatewayRequest
from dcp.models.withdrawal import Withdrawal

__all__ = [
    "AuditEvent",
    "GatewayAllowance",
    "GatewayRequest",
    "Job",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "ModelPrice",
    "Provider",
    "ProviderHeartbeat",
    "ProviderUptime",
    "Renter",
    "Settlement",
    "Topup",
    "Withdrawal",
]
