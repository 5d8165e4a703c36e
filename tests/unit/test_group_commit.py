"""Group commit: items written together share a transaction, yet each keeps its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from dcp.db.group_commit import GroupCommit


async def test_items_that_arrive_together_share_one_commit(database):
    batches: list[list[str]] = []

    async def work(_session, items):
        batches.append(list(items))
        return [None] * len(items)

    group = GroupCommit(database, work, max_batch=3, name="test")
    await asyncio.gather(*(group.write(item) for item in "abcde"))
    assert batches == [["a", "b", "c"], ["d", "e"]]


async def test_an_item_that_cannot_be_written_fails_alone(database):
    batches: list[list[str]] = []

    async def work(_session, items):
        batches.append(list(items))
        if "bad" in items:
            raise ValueError("cannot write bad")
        return [KeyError(item) if item == "taken" else None for item in items]

    group = GroupCommit(database, work, max_batch=10, name="test")
    results = await asyncio.gather(
        *(group.write(item) for item in ("a", "bad", "taken", "d")), return_exceptions=True
    )
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], ValueError) and isinstance(results[2], KeyError)
    assert batches == [["a", "bad", "taken", "d"], ["a"], ["bad"], ["taken"], ["d"]]


async def test_a_caller_that_leaves_does_not_take_its_write_with_it(database):
    started, release = asyncio.Event(), asyncio.Event()
    written: list[str] = []

    async def work(_session, items):
        started.set()
        await release.wait()
        written.extend(items)
        return [None] * len(items)

    group = GroupCommit(database, work, max_batch=10, name="test")
    leaving = asyncio.create_task(group.write("left"))
    await started.wait()  # the writer has taken the item
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    release.set()
    await group.write("next")  # written after the first batch, by the same writer
    assert written == ["left", "next"]


async def test_with_gathering_a_small_batch_waits_until_enough_items_come(database):
    batches: list[list[str]] = []

    async def work(_session, items):
        batches.append(list(items))
        return [None] * len(items)

    group = GroupCommit(database, work, max_batch=10, name="test", gather_seconds=60, gather_until=3)
    early = [asyncio.create_task(group.write(item)) for item in "ab"]
    for _ in range(20):
        await asyncio.sleep(0)
    assert batches == [] and not any(task.done() for task in early)  # waiting for company
    await asyncio.wait_for(asyncio.gather(*early, group.write("c")), timeout=10)
    assert batches == [["a", "b", "c"]]


async def test_with_gathering_a_batch_goes_once_no_more_items_come(database):
    batches: list[list[str]] = []

    async def work(_session, items):
        batches.append(list(items))
        return [None] * len(items)

    # Two callers and nobody else: after a fifth of the wait with no arrival, they are written together.
    group = GroupCommit(database, work, max_batch=10, name="test", gather_seconds=0.05, gather_until=32)
    await asyncio.wait_for(asyncio.gather(group.write("a"), group.write("b")), timeout=10)
    assert batches == [["a", "b"]]
