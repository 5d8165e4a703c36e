"""Renters: registration, profile, balance, keys, and the marketplace listing of providers."""
