"""Shared plumbing used by every domain: errors, keys, money, time, pagination."""
