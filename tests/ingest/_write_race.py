"""Stage SQLite's read-then-write race deterministically: another writer commits in between.

A transaction on ``engine`` runs until its first statement that ``when`` picks (a read).
Right after that read, while the transaction is still open, another thread runs
``other_write`` against the same SQLite file on its own engine, first with no busy wait.
Either that write commits at once (the transaction under test took no write lock, so it
now holds a stale snapshot and its coming write is the one that can fail), or it is told
the database is locked (the transaction under test is already a writer); then it waits
its turn on an ordinary engine and commits after the transaction under test. The
transaction under test resumes only once one of the two has happened, so the interleaving
never depends on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, event, exc

from datatrust.store import create_store_engine

# A guard against a hung test, not a timing assertion: the other writer settles in
# milliseconds unless something is broken.
_SETTLE_SECONDS = 30


@dataclass
class Race:
    staged_after: list[str] = field(default_factory=list)  # the read the writer came after
    first_attempt: str | None = None  # "committed" | "held off"
    errors: list[BaseException] = field(default_factory=list)


@contextmanager
def writer_lands_after(
    engine: Engine, url: str, when: Callable[[str], bool], other_write: Callable[[Engine], None]
) -> Iterator[Race]:
    race = Race()
    impatient = create_store_engine(url)

    @event.listens_for(impatient, "connect")
    def _no_busy_wait(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 0")

    patient = create_store_engine(url)
    settled = threading.Event()

    def write() -> None:
        try:
            try:
                other_write(impatient)
                race.first_attempt = "committed"
                settled.set()
            except exc.OperationalError as error:
                if "database is locked" not in str(error):
                    raise
                race.first_attempt = "held off"
                settled.set()
                other_write(patient)
        except BaseException as error:
            race.errors.append(error)
            settled.set()

    writer = threading.Thread(target=write, name="other-writer")

    def after_execute(connection, _cursor, statement, _params, _context, _many) -> None:
        if race.staged_after or not connection.in_transaction() or not when(statement):
            return
        race.staged_after.append(statement)
        writer.start()
        if not settled.wait(_SETTLE_SECONDS):
            raise AssertionError("the other writer neither committed nor was held off")

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield race
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
        if writer.is_alive() or race.staged_after:
            writer.join(_SETTLE_SECONDS)
        impatient.dispose()
        patient.dispose()
    if race.errors:
        raise race.errors[0]
