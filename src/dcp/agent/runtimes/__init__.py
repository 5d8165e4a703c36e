"""Runtimes: one per job type, each behind the same interface, with CPU and GPU implementations."""
