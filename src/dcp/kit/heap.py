"""The serving process's garbage collector: what startup built is set aside; fewer young collections."""

from __future__ import annotations

import gc

# A request's objects (its scope, body model, futures) live across thousands of allocations while it waits
# on a write, so at the default young threshold (700) each was scanned and promoted at every young
# collection, and full collections walked the whole process: 120-150 ms each, a quarter of the server's time
# under heartbeat load and most of its p99 (bench heartbeat). Cyclic garbage waits at most this many
# allocations.
_YOUNG_THRESHOLD = 50_000


def settle_for_serving() -> None:
    """Call once the app is built, just before serving. What exists now (modules, routes, schemas, the app)
    lives as long as the process: gc.freeze takes it out of every collection. Tests do not call this: in a
    process that builds many apps, frozen objects would never be freed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, 20, 100)
