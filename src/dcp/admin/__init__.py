"""Operators: the dashboard, provider and renter administration, credits."""
