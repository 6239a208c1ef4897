"""Group commit: concurrent callers' items written together, each caller waiting for its own.

A ledger append is a transaction and an anchor rewrite; paid per entry, it bounded how
many requests a part could answer. Here the callers that arrive while one write is under
way queue their items; when it ends, the first of them writes the whole queue in one
transaction (one commit, one anchor) for everyone. No caller returns before the write
that holds its item has finished, and if that write fails every caller of the batch gets
its error: nothing is acknowledged that was not written.

No thread of its own: a caller does the writing (it "leads") and then hands the lead to
the next waiting caller, so each caller writes at most one batch beyond its own wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["MAX_BATCH", "GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 256
"""At most this many items in one write, so one transaction stays small."""


class _Waiter(Generic[Item, Result]):
    """One caller's item, and what became of it (a result, an error, or the lead)."""

    __slots__ = ("error", "item", "result", "settled", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.wake = threading.Event()
        self.settled = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent ``submit`` calls for one store; one write per batch.

    ``write`` takes a batch's items in arrival order and returns their results in the
    same order, or raises; it runs in the thread of the caller leading that batch. All
    callers of one instance must pass an equivalent ``write`` (the same store and anchor):
    whichever leads writes everyone's items with its own.
    """

    def __init__(self, *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._max_batch = max_batch
        self._guard = threading.Lock()  # guards _queue and _leading
        self._queue: list[_Waiter[Item, Result]] = []
        self._leading = False

    def queued(self) -> int:
        """How many callers wait for a write to start (not counting one under way)."""
        with self._guard:
            return len(self._queue)

    def writing(self) -> bool:
        """Whether a caller leads: a write is under way or about to start."""
        with self._guard:
            return self._leading

    def submit(self, item: Item, write: Callable[[Sequence[Item]], Sequence[Result]]) -> Result:
        """``item``'s result once the write holding it has finished; its error if it failed."""
        waiter: _Waiter[Item, Result] = _Waiter(item)
        with self._guard:
            self._queue.append(waiter)
            leads = not self._leading
            self._leading = True
        if not leads:
            waiter.wake.wait()
        if not waiter.settled:  # the lead was handed to this caller: its item is queued
            self._write_next(write)
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _write_next(self, write: Callable[[Sequence[Item]], Sequence[Result]]) -> None:
        """Write the oldest queued items, settle their callers, then pass the lead on."""
        with self._guard:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            results = write([waiter.item for waiter in batch])
            if len(results) != len(batch):
                raise RuntimeError(
                    f"a group write returned {len(results)} results for {len(batch)} items"
                )
            for waiter, result in zip(batch, results, strict=True):
                waiter.result = result
        except BaseException as error:  # every caller of the batch fails with it
            for waiter in batch:
                waiter.error = error
        finally:
            for waiter in batch:
                waiter.settled = True
            with self._guard:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for waiter in batch:
                waiter.wake.set()
            if successor is not None:
                successor.wake.set()
