"""Providers: registration, heartbeats and telemetry, pause and resume, keys."""
