"""Money: the ledger, prices, holds, settlement, refunds and top-ups."""
