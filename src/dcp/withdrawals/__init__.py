"""Provider withdrawals: request to a Saudi IBAN, admin approval, payment or rejection."""
