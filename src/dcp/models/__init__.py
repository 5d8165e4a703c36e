"""ORM tables, one module per aggregate; importing this package registers them all."""

from dcp.models.ledger import LedgerAccount, LedgerEntry, LedgerTransaction
from dcp.models.provider import Provider, ProviderHeartbeat
from dcp.models.renter import Renter
from dcp.models.settlement import Settlement
from dcp.models.withdrawal import Withdrawal

__all__ = [
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "Provider",
    "ProviderHeartbeat",
    "Renter",
    "Settlement",
    "Withdrawal",
]
