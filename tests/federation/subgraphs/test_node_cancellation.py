"""A node stops the work of a request whose caller has gone, and audits it.

The node is real: the social-care node app on a PostgreSQL store loaded with the demo's
records, served by uvicorn on a loopback port, with tokens from a live identity server.
Its read is made slow by a real lock: the test holds ``ACCESS EXCLUSIVE`` on the table the
node reads, so the node's statement waits in PostgreSQL. The client then gives up (its
read deadline, as the gateway's node deadline does) and closes the connection. The node
must cancel the execution (its statement is cancelled in PostgreSQL while the lock is
still held: nothing waits on it any more), write one audit entry saying so (the decision,
``CANCELLED``, no rows read), and keep answering other requests. In process there is no
mutual TLS, so ``AsPeer`` names the gateway as the peer, as ``RequireDirectoryPeer`` would.

The second test runs ``run_off_loop`` alone on SQLite: a worker reads some rows, then a
statement that would run for minutes (a recursive count to a billion) is interrupted when
its task is cancelled, and the cancellation returns only once the worker has stopped, so
what it had read is known before the audit entry would be written.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from datatrust import _prepare
from datatrust._ports import free_port
from datatrust.federation.gateway._overlap import new_query_id
from datatrust.federation.subgraphs._offloop import Abandonable, run_off_loop
from datatrust.network import DirectoryPeer
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import create_store_engine
from datatrust.trust import read_audit_entries
from tests.federation.test_cross_agency_counts import NODE_QUERY, AsPeer
from tests.trust_identity import trust_identity

NODE = "social-care"
WAIT_SECONDS = 20.0
"""How long the test waits for the node to react; never a measured time."""


@contextmanager
def served(app, port: int) -> Iterator[str]:
    """``app`` on uvicorn (lifespan on: the store is migrated) in a thread, until closed."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_SECONDS
    while not server.started:
        assert thread.is_alive(), "uvicorn ended before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_SECONDS)


@pytest.fixture
def node(tmp_path, postgres_url):
    """The social-care node on PostgreSQL over uvicorn, called as by the trust's gateway."""
    with trust_identity(tmp_path / "identity") as identity:
        sources = _prepare.write_demo_files(tmp_path)
        _prepare.prepare_demo_node(tmp_path, NODE, postgres_url, sources[NODE])
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id=NODE,
            agency=NODE,
            data_dir=tmp_path,
            database_url=postgres_url,
            issuers=identity.issuers,
        )
        app = AsPeer(create_node_app(settings), DirectoryPeer("gateway", "gateway"))
        with served(app, free_port()) as url:
            yield url, identity, postgres_url.replace("+psycopg", "")


def ask(url: str, identity, *, request_id: str, timeout: float) -> httpx.Response:
    variables = {"q": new_query_id(), "byArea": False, "padded": False}
    return httpx.post(
        f"{url}/graphql",
        json={"query": NODE_QUERY, "variables": variables},
        headers={
            **identity.headers_for("analyst-cli", "service-planning"),
            "X-Request-Id": request_id,
        },
        timeout=timeout,
    )


def entries_for(database_url: str, request_id: str) -> list:
    engine = create_store_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return [entry for *_, entry in read_audit_entries(engine) if entry.request_id == request_id]
    finally:
        engine.dispose()


def waiting_on_locks(admin, database: str) -> list[str]:
    rows = admin.execute(
        "SELECT query FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (database,),
    ).fetchall()
    return [query for (query,) in rows]


@pytest.mark.postgres
def test_a_request_whose_caller_gave_up_is_cancelled_audited_and_the_node_serves_on(node):
    psycopg = pytest.importorskip("psycopg")
    url, identity, database_url = node
    database = database_url.rsplit("/", 1)[1]
    abandoned = f"gone-{uuid.uuid4()}"
    with (
        psycopg.connect(database_url) as locker,
        psycopg.connect(database_url, autocommit=True) as admin,
    ):
        locker.execute("LOCK TABLE care_episode IN ACCESS EXCLUSIVE MODE")  # held: not committed
        with pytest.raises(httpx.ReadTimeout):
            ask(url, identity, request_id=abandoned, timeout=2.0)
        # The node reacts to the disconnect: its statement is cancelled while the lock is
        # still held, and the request is audited as cancelled.
        deadline = time.monotonic() + WAIT_SECONDS
        while not entries_for(database_url, abandoned) and time.monotonic() < deadline:
            time.sleep(0.1)
        (entry,) = entries_for(database_url, abandoned)
        assert waiting_on_locks(admin, database) == []
        assert (entry.outcome, entry.code) == ("permit", "CANCELLED")
        assert entry.reason.startswith("cancelled: the caller went away")
        assert (entry.row_count, entry.subject_count) == (0, 0)  # nothing was read
        assert any(reason.startswith("queryId q1.") for reason in entry.reasons)
        # The event loop is free while the lock is still held: metadata answers.
        response = httpx.post(f"{url}/graphql", json={"query": "{ _service { sdl } }"}, timeout=10)
        assert response.status_code == 200
        locker.rollback()  # the lock goes
    answered = f"kept-{uuid.uuid4()}"
    response = ask(url, identity, request_id=answered, timeout=60)
    assert response.status_code == 200, response.text
    (values,) = response.json()["data"]["overlapTokens"]["areas"]
    assert len(values["tokens"]) > 100
    (entry,) = entries_for(database_url, answered)
    assert (entry.outcome, entry.code, entry.subject_count) == (
        "permit",
        "OK",
        len(values["tokens"]),
    )
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'outcome="cancelled"' in metrics


def test_cancelled_off_loop_work_is_interrupted_and_what_it_read_is_known_first(tmp_path: Path):
    """A worker reads some rows (noted, as the overlap resolver notes them for the audit
    entry), then runs a statement that would go on for minutes. Cancelling its task
    interrupts the statement, and the cancellation comes back only once the worker has
    stopped: what it read is known by then, so the audit entry can count it."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'slow.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE person (pseudonym TEXT)"))
        connection.execute(
            sa.text("INSERT INTO person VALUES (:p)"), [{"p": f"p{i}"} for i in range(25)]
        )
    endless = sa.text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c"
    )
    started = threading.Event()
    read: list[int] = []
    outcome: list[str] = []

    def work(abandonable: Abandonable) -> int:
        try:
            with abandonable.connect(engine) as connection:
                rows = connection.execute(sa.text("SELECT pseudonym FROM person")).all()
                read.append(len(rows))
                started.set()
                return connection.execute(endless).scalar_one()
        except BaseException as error:
            outcome.append(f"{type(error).__name__}: {error}")
            raise

    async def main() -> None:
        task = asyncio.ensure_future(run_off_loop(work))
        while not started.is_set():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the endless statement is running in the worker
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_SECONDS)
        assert outcome, "the worker had stopped when the cancellation came back"
        assert read == [25]

    asyncio.run(main())
    assert "interrupted" in outcome[0], outcome
    with engine.connect() as connection:  # the interrupted connection left the pool
        assert connection.execute(sa.text("SELECT count(*) FROM person")).scalar_one() == 25
    engine.dispose()
