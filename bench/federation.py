"""Our gateway against Apollo's, and a planning query against its own SQL, in one run.

    python bench/federation.py [--seconds 8] [--requests 800] [--repeat 15]
                               [--readings 1000000] [--persons 100000] [--skip-apollo]
                               [--profile N] [--cache-dir DIR | --no-cache]

Quicker (two to three minutes once the data is cached): ``--seconds 2 --repeat 5``;
smaller data for a first look: ``--readings 100000 --persons 10000``.

1. A demo trust with planning-sized data. ``datatrust up`` prepares a data dir once (keys,
   certificates, migrated stores, the demo's own data); ``bench/_seed.py`` then loads at
   least ``--readings`` sensor readings (with their hourly roll-up) at the council node and
   ``--persons`` people with encounters at health and care episodes at social care, with
   consents and opt-outs by the demo's rules, straight into the stores' tables. The seeded
   dir is kept under ``--cache-dir``, keyed by the parameters and the seeding code, so a
   rerun starts at step 2.
2. The trust ``up`` runs on that dir (identity, the three nodes over mutual TLS, our
   gateway), started with ``datatrust serve`` from the settings ``up`` wrote, without the
   demo's live MQTT feed (see :func:`served_trust`); and Apollo's gateway (the test peer
   in ``tests/peers/apollo-gateway``, run with Node) composed from the same nodes with
   the tool certificate. Both forward the caller's token and purpose, so every node
   authenticates, decides, filters and audits the same way whichever gateway asks.
3. A 50-area two-node query (footfall at the council, encounter counts at health) at
   concurrency 1 and 16 (httpx.AsyncClient, keep-alive), p50/p95 latency and throughput:
   through our gateway, through Apollo's, and, as the baseline, each node's part of it
   sent to the node directly (the fetches of the sequential plan Apollo's gateway makes:
   ours asks the council for the keys first, then both nodes at once). Target: ours at
   least as fast as Apollo's (ratio <= 1.0 at p50 and in time per request).
4. The planning query (all 203 areas: footfall and air quality at the council, encounter
   counts at health, open care episodes at social care, over the seeded quarter) through
   our gateway, against the SQL the nodes run for it, run directly on each node's
   database: the statements are captured by executing the gateway's plan in this process
   against the node's store with the permit the node's published policy decides for the
   same token (checked to give the same answer as the gateway), then replayed on a raw
   connection. Target: within 1.5x of the slowest node's direct SQL; the table also
   gives the floor two CPUs set (the three nodes' SQL at once). ``--profile N``
   then runs cProfile over N requests of each query through our gateway, in process.

Every node and the gateway limit each client to ``rate_limit_per_minute`` with bursts of
``rate_limit_burst`` (100/s and 1,000 by default, and ``up`` has no switch for them), and
the bench has one client, so each timed cell is capped at ``--requests`` and waits for the
buckets it draws on to refill first; a refused request is counted as an error, never timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import math
import os
import pstats
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _seed import QUARTER, SeedPlan, seed_trust
from graphql import parse
from rich.console import Console
from rich.table import Table

from datatrust import _runner
from datatrust._auth import build_authenticator, trusted_issuers
from datatrust._gateway_cli import local_supergraph
from datatrust._ports import free_port_block
from datatrust._prepare import _generator_version
from datatrust.federation._access import operation_access
from datatrust.federation.gateway import QueryPlan, execute_plan, plan_operation
from datatrust.federation.subgraphs import subgraph_schema
from datatrust.federation.subgraphs._base import NodeContext
from datatrust.network import client_ssl_context
from datatrust.node import node_keys
from datatrust.policies import AccessRequest
from datatrust.policies._published import published_runtime
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import create_store_engine

console = Console(width=130)
REPO = Path(__file__).resolve().parent.parent
APOLLO_PEER = REPO / "tests" / "peers" / "apollo-gateway"
PURPOSE = "service-planning"
START_TIMEOUT_SECONDS = 300

SINCE, UNTIL = (day.isoformat() for day in QUARTER)
PERIOD = f'since: "{SINCE}", until: "{UNTIL}"'
TWO_NODE_QUERY = f"{{ areas(first: 50) {{ code footfall({PERIOD}) encounterCount({PERIOD}) }} }}"
PLANNING_QUERY = (
    f"{{ areas(first: 1000) {{ code name footfall({PERIOD}) airQuality({PERIOD}) "
    f"{{ pm25Mean pm10Mean no2Mean readingCount }} encounterCount({PERIOD}) "
    f'openCareEpisodes(on: "{UNTIL}") }} }}'
)


# --- 1. the data -----------------------------------------------------------------------------


def seeded_dir(args: argparse.Namespace, plan: SeedPlan) -> tuple[Path, dict[str, Any]]:
    """A prepared and seeded data dir: from the cache when it holds this plan, else made."""
    version = hashlib.sha256()
    for path in (Path(__file__).with_name("_seed.py"), *_migrations()):
        version.update(path.name.encode() + path.read_bytes())
    version.update(_generator_version().encode())
    folder = (
        Path(tempfile.mkdtemp(prefix="datatrust-bench-federation-")) / "trust"
        if args.no_cache
        else args.cache_dir / f"federation-{plan.key()}-{version.hexdigest()[:12]}"
    )
    marker = folder / "bench-seed.json"
    if marker.is_file():
        seeded = json.loads(marker.read_text())
        console.print(
            f"seeded data dir from the cache: {folder} (seeded in {seeded['total']:.1f} s)"
        )
        return folder, seeded | {"cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    up_once(folder)  # the first start makes keys, certificates, stores, the demo's data
    prepared = time.perf_counter() - started
    report = seed_trust(folder, plan)
    seeded = {
        "prepare": prepared,
        "seconds": report.seconds,
        "total": sum(report.seconds.values()),
        "counts": report.counts,
    }
    marker.write_text(json.dumps(seeded, indent=1))
    return folder, seeded | {"cached": False}


def _migrations() -> list[Path]:
    from datatrust.store import migrations

    return sorted(Path(migrations.__file__).parent.glob("versions/*.py"))


# --- 2. the processes ------------------------------------------------------------------------


def free_base_port(count: int = 8) -> int:
    """A port with the next ``count - 1`` free too: up's gateway, nodes, identity, portal."""
    return free_port_block(count)


def _wait_for_line(
    process: subprocess.Popen, log: Path, wanted: Callable[[str], bool], what: str
) -> str:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        lines = log.read_text(errors="replace").splitlines()
        found = next((line for line in lines if wanted(line)), None)
        if found is not None:
            return found
        if process.poll() is not None:
            raise RuntimeError(
                f"{what} ended early (status {process.returncode}):\n" + "\n".join(lines[-40:])
            )
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{what} not ready within {START_TIMEOUT_SECONDS} s; see {log}")


def _stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def up_once(data_dir: Path) -> dict[str, Any]:
    """Run ``datatrust up`` on ``data_dir`` (free ports) until ready, then stop it.

    It makes or completes what a trust needs there (keys, certificates, the signed
    directory for these ports, migrated stores, the demo's data, each part's settings);
    its run.json is kept as ``bench-run.json`` for :func:`served_trust`.
    """
    log = data_dir.parent / f"{data_dir.name}.up.log"
    argv = [sys.executable, "-m", "datatrust", "up", "--data-dir", str(data_dir)]
    argv += ["--base-port", str(free_base_port())]
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"}
        )
    try:
        _wait_for_line(process, log, lambda line: "Press Ctrl-C" in line, "datatrust up")
        run = json.loads((data_dir / "run.json").read_text())
    finally:
        _stop(process)
    (data_dir / "bench-run.json").write_text(json.dumps(run, indent=1))
    return run


@contextlib.contextmanager
def served_trust(data_dir: Path) -> Iterator[dict[str, Any]]:
    """The trust :func:`served_trust_processes` runs; yields its run.json content."""
    with served_trust_processes(data_dir) as (run, _):
        yield run


@contextlib.contextmanager
def served_trust_processes(data_dir: Path) -> Iterator[tuple[dict[str, Any], _runner.TrustRunner]]:
    """The parts ``up`` runs, started from the settings ``up`` wrote, minus the live feed.

    ``up`` also starts the council's MQTT subscriber and a demo feed when a broker answers
    (one does here, shared with every other trust on the machine). Under sixteen
    concurrent queries the subscriber's chunk transaction (read, then write) meets the
    node's audit writes, fails with "database is locked", and ``up`` then stops the whole
    trust; the feed's ingest would also load the two cores the bench measures on. So the
    bench runs identity, the three nodes and the gateway itself, with ``datatrust serve``
    and the very settings files ``up`` wrote (re-running ``up`` briefly on new ports when
    the old ones are taken).
    """
    saved = data_dir / "bench-run.json"
    run = json.loads(saved.read_text()) if saved.is_file() else up_once(data_dir)
    if not _ports_free(run):
        run = up_once(data_dir)
    tls = run["tls"]
    tool = client_ssl_context(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"]))
    runner = _runner.TrustRunner(data_dir, ssl_context=tool)
    config = data_dir / "config"

    def child(name: str, kind: str, settings: str, ready: str) -> _runner.ChildProcess:
        return _runner.ChildProcess(
            name=name,
            argv=_runner.serve_argv(kind, config / settings),
            ready_url=ready,
            log_path=data_dir / "logs" / f"bench-{settings.removesuffix('.toml')}.log",
        )

    try:
        identity = child("identity", "identity", "identity.toml", f"{run['identity']}/jwks.json")
        runner.start(identity)
        runner.wait_ready([identity])
        nodes = [
            child(f"{name} node", "node", f"{name}.toml", url.removesuffix("/graphql") + "/readyz")
            for name, url in run["nodes"].items()
        ]
        for node in nodes:
            runner.start(node)
        runner.wait_ready(nodes)
        gateway = child(
            "gateway",
            "gateway",
            "gateway.toml",
            run["gateway"].removesuffix("/graphql") + "/readyz",
        )
        runner.start(gateway)
        runner.wait_ready([gateway])
        runner.write_run_file({key: run[key] for key in ("gateway", "nodes", "identity", "tls")})
        yield run, runner  # its children: bench/load.py kills and restarts a node by them
    finally:
        runner.stop_all()


def _ports_free(run: Mapping[str, Any]) -> bool:
    urls = [run["gateway"], run["identity"], *run["nodes"].values()]
    for url in urls:
        parsed = httpx.URL(url)
        with socket.socket() as probe:
            try:
                probe.bind((parsed.host, parsed.port))
            except OSError:
                return False
    return True


def access_token(data_dir: Path) -> str:
    command = [sys.executable, "-m", "datatrust", "token", "--purpose", PURPOSE]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"datatrust token failed: {done.stderr.strip()}")
    return done.stdout.strip()


def apollo_unavailable() -> str | None:
    """Why Apollo's gateway cannot run here, or None (installing the peer when it can)."""
    node = shutil.which("node")
    if node is None:
        return "no `node` on PATH"
    if (
        not (APOLLO_PEER / "gateway.mjs").is_file()
        or not (APOLLO_PEER / "package-lock.json").is_file()
    ):
        return f"the test peer is not in {APOLLO_PEER} (gateway.mjs, package-lock.json)"
    if not (APOLLO_PEER / "node_modules" / "@apollo" / "gateway").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "no `npm` on PATH to install the peer"
        console.print(f"installing the Apollo peer: npm ci --prefix {APOLLO_PEER}")
        done = subprocess.run(
            [npm, "ci", "--prefix", str(APOLLO_PEER)], capture_output=True, text=True, check=False
        )
        if done.returncode:
            return f"npm ci failed: {done.stderr.strip()[-500:]}"
    return None


@contextlib.contextmanager
def apollo_gateway(run: Mapping[str, Any], folder: Path) -> Iterator[str]:
    """Apollo's gateway over the trust's nodes (tool certificate); yields its URL."""
    tls = run["tls"]
    argv = [shutil.which("node") or "node", str(APOLLO_PEER / "gateway.mjs")]
    argv += [
        "--port",
        str(free_port_block(1)),
        "--ca",
        tls["ca"],
        "--cert",
        tls["cert"],
        "--key",
        tls["key"],
    ]
    for name, url in run["nodes"].items():
        argv += ["--subgraph", f"{name}={url}"]
    log = folder / "apollo-gateway.log"
    with log.open("w") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        line = _wait_for_line(
            process, log, lambda text: text.startswith("ready "), "Apollo gateway"
        )
        yield line.split(" ", 1)[1].strip()
    finally:
        _stop(process, signal.SIGTERM)


# --- 3. latency and throughput ---------------------------------------------------------------


class Buckets:
    """The rate limiter's token buckets as this client sees them, one per process.

    Each process allows ``per_minute`` requests a minute per client in bursts of ``burst``;
    ``reserve`` sleeps until every bucket a cell draws on holds what the cell may take.
    """

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate, self.burst = per_minute / 60.0, float(burst)
        self.levels: dict[str, tuple[float, float]] = {}

    def level(self, process: str, now: float) -> float:
        tokens, then = self.levels.get(process, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    async def reserve(self, processes: tuple[str, ...], count: int) -> None:
        now = time.monotonic()
        short = max((count - self.level(p, now)) / self.rate for p in processes)
        if short > 0:
            await asyncio.sleep(short)

    def spend(self, processes: tuple[str, ...], count: int) -> None:
        now = time.monotonic()
        for process in processes:
            self.levels[process] = (self.level(process, now) - count, now)


@dataclass
class Target:
    """Somewhere to send one query: a URL, its body, and the processes it reaches."""

    name: str
    url: str
    body: bytes
    processes: tuple[str, ...]
    verify: ssl.SSLContext | bool = True


@dataclass
class Cell:
    target: str
    concurrency: int
    seconds: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    errors: int = 0
    first_error: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan

    @property
    def p95(self) -> float:
        return percentile(self.seconds, 0.95)

    @property
    def throughput(self) -> float:
        return len(self.seconds) / self.elapsed if self.elapsed else math.nan


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def _failure(response: httpx.Response) -> str | None:
    """Why ``response`` is not a full answer (refused, partial, errors), or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if b'"errors"' in response.content:
        return response.text[:300]
    return None


async def measure(
    targets: list[Target],
    headers: Mapping[str, str],
    concurrency: int,
    seconds: float,
    limit: int,
    buckets: Buckets,
    rounds: int = 3,
) -> list[Cell]:
    """Each target at ``concurrency`` for ``seconds`` or ``limit`` requests, interleaved.

    The time is cut into ``rounds`` slices taken in turn (ours, Apollo's, the nodes), so a
    change in the machine's background load falls on every target alike. Each target
    keeps one kept-alive pool; a slice starts with ``concurrency`` untimed requests, which
    reopen connections a server closed while the buckets refilled.
    """
    cells = {t.name: Cell(t.name, concurrency) for t in targets}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {**headers, "Content-Type": "application/json"}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            t.name: await stack.enter_async_context(
                httpx.AsyncClient(verify=t.verify, limits=limits, timeout=60)
            )
            for t in targets
        }
        for _ in range(rounds):
            for target in targets:
                await _slice(
                    clients[target.name],
                    target,
                    headers,
                    cells[target.name],
                    seconds / rounds,
                    math.ceil(limit / rounds),
                    buckets,
                )
    return list(cells.values())


async def _slice(
    client: httpx.AsyncClient,
    target: Target,
    headers: Mapping[str, str],
    cell: Cell,
    seconds: float,
    limit: int,
    buckets: Buckets,
) -> None:
    warmup = cell.concurrency
    await buckets.reserve(target.processes, limit + warmup)
    sent = 0

    async def one(timed: bool) -> None:
        started = time.perf_counter()
        response = await client.post(target.url, content=target.body, headers=headers)
        took = time.perf_counter() - started
        problem = _failure(response)
        if problem:
            cell.errors += 1
            cell.first_error = cell.first_error or problem
        elif timed:
            cell.seconds.append(took)

    await asyncio.gather(*(one(False) for _ in range(warmup)))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal sent
        while sent < limit and time.perf_counter() < deadline:
            sent += 1
            await one(True)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(cell.concurrency)))
    cell.elapsed += time.perf_counter() - started
    buckets.spend(target.processes, sent + warmup)


def direct_targets(
    plan: QueryPlan, run: Mapping[str, Any], tool: ssl.SSLContext, headers: Mapping[str, str]
) -> list[Target]:
    """Each fetch of ``plan`` as the gateway sends it, to its node directly (mutual TLS).

    Entity fetches get the representations the root fetch's answer gives, as the gateway
    builds them (here: the areas the root query lists).
    """
    targets, representations = [], None
    for step in plan.steps:
        for fetch in step:
            variables: dict[str, Any] = {}
            if fetch.targets:
                variables[fetch.representations_variable] = representations
            body = {"query": fetch.operation, "variables": variables}
            url = run["nodes"][fetch.service]
            targets.append(
                Target(
                    f"{fetch.service} node, direct",
                    url,
                    json.dumps(body).encode(),
                    (fetch.service,),
                    tool,
                )
            )
            if not fetch.targets:
                answer = httpx.post(url, json=body, headers=headers, verify=tool, timeout=60)
                areas = answer.json()["data"]["areas"]
                representations = [{"__typename": "Area", "code": a["code"]} for a in areas]
    return targets


# --- 4. the planning query against its own SQL -----------------------------------------------


@dataclass
class NodeSql:
    """One node's part of the planning query: the statements it ran, and a way to replay."""

    node: str
    engine: sa.Engine
    statements: list[tuple[str, Any]] = field(default_factory=list)

    def replay(self) -> float:
        """Run every statement on a raw DBAPI connection, fetching all rows; seconds taken."""
        connection = self.engine.raw_connection()
        try:
            raw = connection.driver_connection
            started = time.perf_counter()
            for statement, parameters in self.statements:
                if statement.startswith("BEGIN") and raw.in_transaction:
                    raw.rollback()  # the node's previous connection use ended here
                cursor = raw.cursor()
                cursor.execute(statement, parameters)
                cursor.fetchall()
                cursor.close()
            raw.rollback()
            return time.perf_counter() - started
        finally:
            connection.close()


class InProcessNodes(httpx.AsyncBaseTransport):
    """The nodes' subgraphs executed in this process on their stores, recording the SQL.

    Each fetch gets the Permit the node's published policy decides for the caller's token
    (the node's own enforcement, minus the HTTP, the audit write and the rate limit), so the
    statements are the ones the node runs for the same request.
    """

    def __init__(self, data_dir: Path, token: str) -> None:
        self.data_dir, self.token = data_dir, token
        self.keys = node_keys(data_dir)
        self.runtime = published_runtime(data_dir)
        self.sql: dict[str, NodeSql] = {}
        self.requesters: dict[str, Any] = {}

    def node(self, name: str) -> NodeSql:
        if name not in self.sql:
            config = self.data_dir / "config" / f"{name}.toml"
            settings = load_settings(NodeSettings, toml_path=config, environ={})
            engine = create_store_engine(settings.effective_database_url)
            authenticate = build_authenticator(
                trusted_issuers(settings), settings.effective_audience
            )
            self.requesters[name] = authenticate(f"Bearer {self.token}")
            self.sql[name] = NodeSql(name, engine)
        return self.sql[name]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host
        node = self.node(name)
        body = json.loads(await request.aread())
        schema = subgraph_schema(name)
        access = operation_access(schema._schema, parse(body["query"]), schema.entity_key_fields)
        permit = self.runtime.decide(
            AccessRequest(
                purpose=request.headers["purpose"],
                node=name,
                fields=access.data_fields,
                requester=self.requesters[name],
                aggregate=access.is_aggregate,
            )
        )
        context = NodeContext(
            engine=node.engine,
            permit=permit,
            node_id=name,
            keys=self.keys,
            register=self.runtime.register,
        )

        def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
            node.statements.append((statement, parameters))

        node.statements.clear()
        sa.event.listen(node.engine, "before_cursor_execute", record)
        try:
            result = await schema.execute(
                body["query"], variable_values=body.get("variables"), context_value=context
            )
        finally:
            sa.event.remove(node.engine, "before_cursor_execute", record)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return httpx.Response(200, json=answer)

    def close(self) -> None:
        for node in self.sql.values():
            node.engine.dispose()


async def capture_sql(
    data_dir: Path, token: str, plan: QueryPlan, supergraph
) -> tuple[dict, InProcessNodes]:
    """Run ``plan`` in process, recording each node's SQL; returns its answer and the nodes."""
    nodes = InProcessNodes(data_dir, token)
    async with httpx.AsyncClient(transport=nodes) as client:
        answer = await execute_plan(
            plan,
            supergraph,
            client=client,
            urls={name: f"http://{name}/graphql" for name in ("council", "health", "social-care")},
            headers={"Purpose": PURPOSE, "Authorization": f"Bearer {token}"},
        )
    return answer, nodes


def timed_posts(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> Callable[[], Any]:
    """One timed POST of ``body`` to ``url``, refusing any answer with errors."""

    async def post() -> float:
        started = time.perf_counter()
        response = await client.post(
            url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        took = time.perf_counter() - started
        problem = _failure(response)
        if problem:
            raise RuntimeError(f"{url}: {problem}")
        return took

    return post


async def profile_gateway(
    data_dir: Path, headers: Mapping[str, str], queries: Mapping[str, str], count: int
) -> None:
    """cProfile our gateway answering ``queries``, in this process, against the live nodes.

    The trust's gateway application (``create_trust_gateway``, from the settings ``up``
    wrote) behind an in-process ASGI transport, so the profile holds the gateway's own work
    (authentication, decision, audit, planning, fetches, merging) and not the load client.
    """
    from datatrust.gateway import create_trust_gateway
    from datatrust.settings import GatewaySettings

    config = data_dir / "config" / "gateway.toml"
    app = create_trust_gateway(load_settings(GatewaySettings, toml_path=config, environ={}))
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 60
        while app.state.gateway.supergraph is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        transport = httpx.ASGITransport(app=app)
        sent = {**headers, "Content-Type": "application/json"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            for name, query in queries.items():
                body = json.dumps({"query": query}).encode()
                for _ in range(3):
                    await client.post("/graphql", content=body, headers=sent)
                profiler = cProfile.Profile()
                started = time.perf_counter()
                profiler.enable()
                for _ in range(count):
                    response = await client.post("/graphql", content=body, headers=sent)
                    if _failure(response):
                        raise RuntimeError(f"profiled gateway: {_failure(response)}")
                profiler.disable()
                took = (time.perf_counter() - started) / count
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(20)
                stats.sort_stats("cumulative").print_stats(
                    r"main/(federation|policies|trust|datatrust)/", 30
                )
                console.print(
                    f"[bold]cProfile: our gateway, {count} x {name} "
                    f"({took * 1000:.1f} ms each under the profiler)[/]"
                )
                console.print(out.getvalue(), markup=False, highlight=False)


# --- main ------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def verdict(ratio: float, limit: float) -> str:
    return "✓" if ratio <= limit else "✗"


async def benchmark(
    args: argparse.Namespace, data_dir: Path, run: dict[str, Any], apollo: str | None
) -> dict[str, Any]:
    token = access_token(data_dir)
    headers = {"Purpose": PURPOSE, "Authorization": f"Bearer {token}"}
    tls = run["tls"]
    tool = client_ssl_context(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"]))
    supergraph = local_supergraph()
    defaults = NodeSettings.model_fields
    buckets = Buckets(
        defaults["rate_limit_per_minute"].default, defaults["rate_limit_burst"].default
    )
    limit = min(args.requests, int(buckets.burst) - 3 * 16 - 20)

    # Both gateways answer the same data, or the comparison means nothing.
    two_node = json.dumps({"query": TWO_NODE_QUERY}).encode()
    targets = [Target("our gateway", run["gateway"], two_node, ("gateway", "council", "health"))]
    answers = {
        "our gateway": httpx.post(
            run["gateway"],
            content=two_node,
            headers={**headers, "Content-Type": "application/json"},
            timeout=60,
        ).json()
    }
    if apollo:
        targets.append(Target("@apollo/gateway", apollo, two_node, ("council", "health")))
        answers["@apollo/gateway"] = httpx.post(
            apollo,
            content=two_node,
            headers={**headers, "Content-Type": "application/json"},
            timeout=60,
        ).json()
    for name, answer in answers.items():
        if answer.get("errors") or not answer.get("data"):
            raise RuntimeError(
                f"{name} did not answer the two-node query: {json.dumps(answer)[:500]}"
            )
    same = len({json.dumps(a["data"], sort_keys=True) for a in answers.values()}) == 1
    console.print(
        "two-node query: " + ("both gateways give the same data" if apollo and same else "answered")
    )
    if apollo and not same:
        raise RuntimeError("our gateway and Apollo's answer the two-node query differently")
    # The direct baseline is each node's share in one request, one node after the other,
    # as @apollo/gateway plans it (our gateway asks the council for keys first instead).
    two_plan = plan_operation(supergraph, TWO_NODE_QUERY, keys_first=False)
    targets += direct_targets(two_plan, run, tool, headers)

    cells: list[Cell] = []
    for concurrency in (1, 16):
        # One request at a time takes short slices, so load drift falls on every target
        # alike; sixteen at a time need longer ones, or the drain at a slice's end (fewer
        # than sixteen in flight) would count against throughput.
        rounds = 8 if concurrency == 1 else 3
        cells_now = await measure(
            targets, headers, concurrency, args.seconds, limit, buckets, rounds
        )
        for cell in cells_now:
            cells.append(cell)
            console.print(
                f"  {cell.target:<24} c{concurrency:<3} p50 {ms(cell.p50):>7} ms  "
                f"p95 {ms(cell.p95):>7} ms  {cell.throughput:7.1f} req/s  "
                f"({len(cell.seconds)} timed, {cell.errors} errors) {cell.first_error[:200]}",
                highlight=False,
            )

    # The planning query: through the gateways, each fetch to its node, and the nodes' SQL.
    planning_plan = plan_operation(supergraph, PLANNING_QUERY)
    captured, nodes = await capture_sql(data_dir, token, planning_plan, supergraph)
    planning = json.dumps({"query": PLANNING_QUERY}).encode()
    async with (
        httpx.AsyncClient(timeout=120) as client,
        httpx.AsyncClient(timeout=120, verify=tool) as node_client,
    ):
        ours = timed_posts(client, run["gateway"], planning, headers)
        response = await client.post(
            run["gateway"],
            content=planning,
            headers={**headers, "Content-Type": "application/json"},
        )
        through_gateway = response.json()
        if through_gateway.get("data") != captured.get("data"):
            raise RuntimeError("the gateway's planning answer differs from the in-process plan's")
        variants: dict[str, Callable[[], Any]] = {"our gateway": ours}
        if apollo:
            variants["@apollo/gateway"] = timed_posts(client, apollo, planning, headers)
        shares = plan_operation(supergraph, PLANNING_QUERY, keys_first=False)
        for target in direct_targets(shares, run, tool, headers):
            variants[f"{target.name} (HTTPS)"] = timed_posts(
                node_client, target.url, target.body, headers
            )
        sql_variants = {f"{name} node, direct SQL": node.replay for name, node in nodes.sql.items()}
        samples: dict[str, list[float]] = {name: [] for name in (*variants, *sql_variants)}
        for round_ in range(args.repeat + 2):
            for name, post in variants.items():
                took = await post()
                if round_ >= 2:
                    samples[name].append(took)
            for name, replay in sql_variants.items():
                took = replay()
                if round_ >= 2:
                    samples[name].append(took)
    statements = {name: len(node.statements) for name, node in nodes.sql.items()}
    nodes.close()
    if args.profile:
        queries = {"two-node query": TWO_NODE_QUERY, "planning query": PLANNING_QUERY}
        await profile_gateway(data_dir, headers, queries, args.profile)
    return {"cells": cells, "planning": samples, "statements": statements, "apollo": apollo}


def report(
    result: dict[str, Any], seeded: dict[str, Any], args: argparse.Namespace, total: float
) -> None:
    counts = seeded["counts"]
    console.print(
        f"[bold]data[/]: council {counts['council']['reading']:,} readings "
        f"({counts['council']['reading_hourly']:,} hourly roll-up rows); health "
        f"{counts['health']['person']:,} patients, {counts['health']['encounter']:,} encounters; "
        f"social care {counts['social-care']['care recipients']:,} people, "
        f"{counts['social-care']['care_episode']:,} episodes (demo data included)"
    )
    where = "cached, seeded earlier in" if seeded["cached"] else "seeded now in"
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in seeded["seconds"].items())
    console.print(
        f"[bold]seeding[/]: {where} {seeded['total']:.1f} s ({parts}); "
        f"first `up` {seeded['prepare']:.1f} s"
    )

    cells: list[Cell] = result["cells"]
    table = Table(title=f"50-area two-node query ({TWO_NODE_QUERY[:60]}...)", title_justify="left")
    for column in ("target", "concurrency", "p50 ms", "p95 ms", "req/s", "timed", "errors"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for cell in cells:
        table.add_row(
            cell.target,
            str(cell.concurrency),
            ms(cell.p50),
            ms(cell.p95),
            f"{cell.throughput:.1f}",
            str(len(cell.seconds)),
            str(cell.errors),
        )
    console.print(table)
    by = {(c.target, c.concurrency): c for c in cells}
    ratios = Table(title="ratios", title_justify="left")
    for column in ("ratio", "c1", "c16", "target"):
        ratios.add_column(column, justify="left" if column in ("ratio", "target") else "right")
    council, health = "council node, direct", "health node, direct"
    for gateway in ("our gateway", "@apollo/gateway"):
        if (gateway, 1) not in by:
            continue
        added = by[(gateway, 1)].p50 - by[(council, 1)].p50 - by[(health, 1)].p50
        ratios.add_row(
            f"{gateway}: p50 added to the two direct fetches, in sequence (ms)",
            ms(added),
            "-",
            "",
        )
        share = [by[(gateway, c)].throughput / by[(council, c)].throughput for c in (1, 16)]
        ratios.add_row(
            f"{gateway}: throughput / council direct", f"{share[0]:.2f}", f"{share[1]:.2f}", ""
        )
    if ("@apollo/gateway", 1) in by:
        p50 = [by[("our gateway", c)].p50 / by[("@apollo/gateway", c)].p50 for c in (1, 16)]
        per_request = [
            by[("@apollo/gateway", c)].throughput / by[("our gateway", c)].throughput
            for c in (1, 16)
        ]
        ratios.add_row(
            "ours / apollo, p50 latency",
            f"{p50[0]:.2f}",
            f"{p50[1]:.2f}",
            f"<= 1.0 {verdict(max(p50), 1.0)}",
        )
        ratios.add_row(
            "apollo / ours, throughput (ours' time per request / apollo's)",
            f"{per_request[0]:.2f}",
            f"{per_request[1]:.2f}",
            f"<= 1.0 {verdict(max(per_request), 1.0)}",
        )
    else:
        ratios.add_row("ours / apollo", "-", "-", f"skipped: {result['apollo_reason']}")
    console.print(ratios)

    samples: dict[str, list[float]] = result["planning"]
    plan_table = Table(
        title=f"planning query, all areas, three nodes ({args.repeat} timed runs each, "
        "interleaved)",
        title_justify="left",
    )
    for column in ("variant", "p50 ms", "p95 ms", "note"):
        plan_table.add_column(column, justify="left" if column in ("variant", "note") else "right")
    for name, values in samples.items():
        node = name.split(" node")[0]
        note = f"{result['statements'][node]} statements" if "direct SQL" in name else ""
        plan_table.add_row(name, ms(statistics.median(values)), ms(percentile(values, 0.95)), note)
    plan_table.add_section()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    sql = {name.split(" node")[0]: m for name, m in medians.items() if "direct SQL" in name}
    slowest = max(sql, key=sql.get)
    cpus = os.cpu_count() or 1
    floor = max(max(sql.values()), sum(sql.values()) / cpus)
    ratio = medians["our gateway"] / sql[slowest]
    plan_table.add_row(
        f"our gateway / slowest node's SQL ({slowest})",
        f"{ratio:.2f}x",
        "",
        f"target <= 1.5 {verdict(ratio, 1.5)}",
    )
    plan_table.add_row(
        f"our gateway / the nodes' SQL all at once on {cpus} CPUs (its floor)",
        f"{medians['our gateway'] / floor:.2f}x",
        "",
        f"floor {ms(floor)} ms: the slowest node's SQL or all SQL / CPUs",
    )
    if "@apollo/gateway" in medians:
        plan_table.add_row(
            "ours / apollo, p50",
            f"{medians['our gateway'] / medians['@apollo/gateway']:.2f}x",
            "",
            "",
        )
    console.print(plan_table)
    console.print(
        f"whole run: {total:.0f} s; load average {result['load']} at the end "
        "(other work on this machine shares its CPUs with every process measured)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="longest timed run of each cell")
    parser.add_argument(
        "--requests",
        type=int,
        default=800,
        help="most timed requests in a cell (capped below the rate limiter's burst)",
    )
    parser.add_argument(
        "--repeat", type=int, default=15, help="timed runs of each planning-query variant"
    )
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the timings, cProfile N requests of each query through our gateway",
    )
    parser.add_argument("--skip-apollo", action="store_true", help="do not run @apollo/gateway")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "datatrust-bench",
        help="where seeded data dirs are kept",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="seed a fresh data dir and delete it after"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    console.print(f"machine: {os.cpu_count()} CPUs, load average {_load()} at the start")
    plan = SeedPlan(readings=args.readings, persons=args.persons)
    data_dir, seeded = seeded_dir(args, plan)
    reason = "--skip-apollo" if args.skip_apollo else apollo_unavailable()
    try:
        with served_trust(data_dir) as run, contextlib.ExitStack() as stack:
            apollo = None if reason else stack.enter_context(apollo_gateway(run, data_dir.parent))
            if reason:
                console.print(f"@apollo/gateway skipped: {reason}")
            result = asyncio.run(benchmark(args, data_dir, run, apollo))
            result["apollo_reason"] = reason
            result["load"] = _load()
    finally:
        if args.no_cache:  # the data dir, and the logs beside it
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    report(result, seeded, args, time.perf_counter() - started)


def _load() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg()) + " (1 / 5 / 15 min)"


if __name__ == "__main__":
    main()
