"""Group commit on its own: who is written together, who gets which result or error."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from datatrust.trust._group_commit import GroupCommit

CALLERS = 16


def wait_until(condition, what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.002)


class HeldWrite:
    """A write that holds its first batch until the other callers have queued behind it."""

    def __init__(self, group: GroupCommit, *, fail_batch: int | None = None) -> None:
        self.group = group
        self.fail_batch = fail_batch
        self.batches: list[list[int]] = []
        self.started = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[str]:
        if not self.batches:
            self.started.set()
            wait_until(lambda: self.group.queued() == CALLERS - 1, "the others to queue")
        self.batches.append(list(items))
        if len(self.batches) == self.fail_batch:
            raise OSError(f"batch {self.fail_batch} could not be written")
        return [f"written-{item}" for item in items]


def submit_concurrently(group: GroupCommit, write) -> dict[int, object]:
    """Caller 0 submits first; the others once it leads. Each caller's result or error."""
    outcomes: dict[int, object] = {}

    def call(item: int) -> None:
        try:
            outcomes[item] = group.submit(item, write)
        except OSError as error:
            outcomes[item] = error

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert write.started.wait(timeout=10), "the first caller never started its write"
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, CALLERS)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a caller never returned"
    return outcomes


def test_callers_queued_behind_a_write_are_written_together_each_getting_its_own_result():
    group: GroupCommit[int, str] = GroupCommit()
    write = HeldWrite(group)
    outcomes = submit_concurrently(group, write)
    assert write.batches[0] == [0]
    assert sorted(write.batches[1]) == list(range(1, CALLERS))
    assert len(write.batches) == 2  # fifteen callers, one write
    assert outcomes == {item: f"written-{item}" for item in range(CALLERS)}


def test_a_failed_write_fails_every_caller_of_its_batch_and_only_those():
    group: GroupCommit[int, str] = GroupCommit()
    write = HeldWrite(group, fail_batch=2)
    outcomes = submit_concurrently(group, write)
    assert outcomes[0] == "written-0"
    failed = [item for item, outcome in outcomes.items() if isinstance(outcome, OSError)]
    assert sorted(failed) == sorted(write.batches[1]) == list(range(1, CALLERS))
    assert group.submit(99, write) == "written-99"  # the lead was not lost with the batch


def test_a_long_queue_is_written_in_batches_of_at_most_max_batch_in_arrival_order():
    group: GroupCommit[int, str] = GroupCommit(max_batch=4)
    write = HeldWrite(group)
    outcomes = submit_concurrently(group, write)
    assert [len(batch) for batch in write.batches] == [1, 4, 4, 4, 3]
    later = [item for batch in write.batches[1:] for item in batch]
    assert sorted(later) == list(range(1, CALLERS))
    assert outcomes == {item: f"written-{item}" for item in range(CALLERS)}


def test_a_write_that_loses_results_fails_its_callers_rather_than_guessing():
    group: GroupCommit[int, str] = GroupCommit()
    with pytest.raises(RuntimeError, match="returned 0 results for 1 items"):
        group.submit(1, lambda items: [])


def test_max_batch_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(max_batch=0)
