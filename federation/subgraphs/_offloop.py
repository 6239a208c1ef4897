"""Blocking store work off the event loop, stopped when the request that wanted it is gone.

A resolver that reads a lot (a cross-agency cohort: tens of thousands of rows, then a
keyed hash of each person) would hold the node's event loop for the whole read if it ran
there: every other request at the node would wait, and a caller that gave up (the
gateway's node deadline, a client that disconnected) could not be noticed until the work
was done. :func:`run_off_loop` runs it in a worker thread instead, and when the awaiting
task is cancelled (the endpoint cancels a request's execution when its caller
disconnects) it stops the worker too: the statement in flight is interrupted (SQLite's
``interrupt()``, PostgreSQL's cancel request) and the worker's own loops stop at their
next :meth:`Abandonable.check`. The cancellation is held until the worker has stopped, so
what it read is known (and audited) before the request's audit entry is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

__all__ = ["Abandonable", "Abandoned", "run_off_loop"]

T = TypeVar("T")
_log = logging.getLogger("datatrust.node")


class Abandoned(Exception):
    """The request this work was for has been cancelled: nothing more is read."""


class Abandonable:
    """What a worker uses to read the store and to learn that its request was abandoned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._in_flight: Any = None  # the DBAPI connection of the statement running now

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def check(self) -> None:
        """Raise :class:`Abandoned` once the request is gone (call between chunks of work)."""
        if self._abandoned:
            raise Abandoned

    @contextlib.contextmanager
    def connect(self, engine: Engine) -> Iterator[Connection]:
        """A store connection whose statements :meth:`abandon` interrupts.

        A connection that may have been interrupted is closed, never given back to the
        pool: an interrupt is asynchronous (PostgreSQL's cancel request, SQLite's
        interrupt counter) and could otherwise stop the next request's statement.
        """
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            with self._lock:
                self.check()
                self._in_flight = raw
            try:
                yield connection
            finally:
                with self._lock:
                    self._in_flight = None
                    interrupted = self._abandoned
                if interrupted:
                    connection.invalidate()

    def abandon(self) -> None:
        """Stop the work: later checks raise, and the statement in flight is interrupted.

        The interrupt is sent under the lock, so the connection cannot go back to the
        pool (and to another request) while it is on its way.
        """
        with self._lock:
            self._abandoned = True
            raw = self._in_flight
            interrupt = (
                getattr(raw, "interrupt", None)  # sqlite3
                or getattr(raw, "cancel_safe", None)  # psycopg >= 3.2
                or getattr(raw, "cancel", None)  # older psycopg
            )
            if interrupt is None:
                return
            try:
                interrupt()  # each is made to be called from another thread
            except Exception:  # the statement may have just ended; the checks still stop it
                _log.debug("could not interrupt an abandoned statement", exc_info=True)


async def run_off_loop(work: Callable[[Abandonable], T]) -> T:
    """``work(abandonable)`` in a worker thread; if this task is cancelled, the worker is
    stopped (its statement interrupted, its checks raising) and awaited before the
    cancellation goes on, so nothing it does outlives the request unnoticed."""
    abandonable = Abandonable()
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the trace id and logging context, as to_thread
    future = loop.run_in_executor(None, functools.partial(context.run, work, abandonable))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await _settled(_in_own_thread(abandonable.abandon))
        await _settled(future)
        raise


def _in_own_thread(call: Callable[[], object]) -> asyncio.Future[None]:
    """Run ``call`` in a thread of its own: a PostgreSQL cancel request is a network round
    trip that must not hold the event loop, nor wait behind the very workers it stops."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def run() -> None:
        try:
            call()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    threading.Thread(target=run, name="datatrust-abandon", daemon=True).start()
    return done


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait for ``future`` whatever it ends with, through further cancellations too."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue
        except Exception:  # what the abandoned work raised no longer matters
            break
    if future.done() and not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved
