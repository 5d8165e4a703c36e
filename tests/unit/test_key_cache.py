"""The key cache: entries expire, and a holder forgotten meanwhile is not cached from a stale read."""

from __future__ import annotations

from dcp.key_cache import KeyCache, KeyHolder, forget_everywhere
from dcp.kit.keys import Role


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


RENTER = KeyHolder(Role.renter, 7, "active")


def test_an_entry_is_served_until_it_expires():
    ticks = Ticks()
    cache = KeyCache(5, clock=ticks)
    cache.put("digest", RENTER, generation=cache.generation)
    ticks.now += 4.9
    assert cache.get("digest") == RENTER
    ticks.now += 0.1
    assert cache.get("digest") is None


def test_a_read_that_started_before_a_change_is_not_cached():
    cache = KeyCache(5)
    generation = cache.generation  # a request starts reading the row
    forget_everywhere(Role.renter, 7)  # meanwhile the key is rotated and committed
    cache.put("old-digest", RENTER, generation=generation)
    assert cache.get("old-digest") is None


def test_forgetting_a_holder_drops_its_key_in_every_cache():
    caches = [KeyCache(5), KeyCache(5)]
    for cache in caches:
        cache.put("digest", RENTER, generation=cache.generation)
    forget_everywhere(Role.renter, 7)
    assert [cache.get("digest") for cache in caches] == [None, None]


def test_a_new_key_replaces_the_holders_old_one():
    cache = KeyCache(5)
    cache.put("old", RENTER, generation=cache.generation)
    cache.put("new", RENTER, generation=cache.generation)
    assert cache.get("old") is None and cache.get("new") == RENTER


def test_a_ttl_of_zero_caches_nothing():
    cache = KeyCache(0)
    cache.put("digest", RENTER, generation=cache.generation)
    assert cache.get("digest") is None


def test_a_full_cache_starts_over():
    cache = KeyCache(5, max_entries=2)
    for n in range(3):
        cache.put(f"d{n}", KeyHolder(Role.provider, n, "approved"), generation=cache.generation)
    assert cache.get("d0") is None and cache.get("d2") is not None
