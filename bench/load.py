"""Analysts under load, with one node killed and restarted in the middle.

    python bench/load.py [--seconds 300] [--analysts 50] [--think 10] [--node health]
                         [--outage-at S] [--outage-seconds 20] [--timeout 30]
                         [--max-requests N] [--readings N] [--persons N]
                         [--cache-dir DIR | --no-cache] [--json FILE]
    python bench/load.py --quick        # a 30 s smoke run, the node out for 8 s

1. The trust of ``bench/federation.py``: a demo trust seeded (``bench/_seed.py``, cached
   under ``--cache-dir``) with at least 1,000,000 sensor readings at the council and
   100,000 people at health and social care, run as separate processes on loopback
   (identity, the three nodes over mutual TLS, the gateway; no live MQTT feed).
2. ``--analysts`` analysts, each with its own access tokens from the identity server (the
   client credentials flow, one token per purpose and demo client it uses), send the demo
   queries of README.md and docs/ (planning by LSOA across the three nodes, one area, five
   areas, cross-agency counts, a research cohort, direct care), drawn at random by weight,
   through the gateway for ``--seconds`` or until ``--max-requests`` are sent. Each waits
   a random think time between queries (uniform, mean ``--think`` s; 0 is a closed loop)
   and gives a request up after ``--timeout`` s. The default think time, 10 s, is that of
   a person reading an answer before asking again (a 203-row table, a map), which is still
   brisk for an analyst; 50 such analysts offer about 5 requests a second. ``--think 1``
   models scripts, not people: 50 of them offer about 50 a second, several times what two
   cores running the whole trust and the load client serve, so it measures overload.
   Every request carries its own ``X-Request-Id``, which the gateway forwards to the
   nodes and every ledger records.
3. At ``--outage-at`` s (default 40% of the run) the ``--node`` process is killed with
   SIGKILL; ``--outage-seconds`` after the kill it is started again with the very argv the
   trust started it with, and the outage window ends when its ``/readyz`` answers. A
   request in flight at any moment of that window counts as "during the outage".
4. Afterwards (the trust stopped): every ledger's hash chain is verified (as ``datatrust
   audit verify`` does) and each request is matched to the entries its id left at the
   gateway and at each node (see ``_loadstats.audit_request``: one entry per fetch at every
   node that answered it; none at a node that was down, as expected).

Printed: p50/p95/p99 latency and throughput, overall, outside and during the outage, and
per query; errors by kind (HTTP status, GraphQL error code, the node a partial result
names, client timeouts); the audit verdicts; and the targets (no 5xx, no unaudited
request, p95 under 500 ms outside the outage). Latency counts every request, answered or
not, from send to the last byte. The load client runs on the same CPUs as the trust.

Every node and the gateway allow each client 100 requests a second (bursts of 1,000), and
the planning analysts share one demo client, so a load above that is refused with 429
(counted under "HTTP status", never hidden).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _loadstats import UNAUDITED, AuditTally, Outcome, Window, audit_request, error_kinds
from _loadstats import read_errors as read_response_errors
from _seed import LSOAS, SeedPlan
from rich.console import Console
from rich.table import Table

from datatrust._audit_cli import PARTS, part_settings, verify_ledgers
from datatrust._gateway_cli import local_supergraph
from datatrust._identity_cli import request_token
from datatrust._runner import ChildProcess, TrustRunner
from datatrust.federation.gateway import plan_operation
from datatrust.store import create_store_engine
from federation import (  # bench/federation.py
    PERIOD,
    PLANNING_QUERY,
    UNTIL,
    percentile,
    seeded_dir,
    served_trust_processes,
)

console = Console(width=130)
TARGET_P95_SECONDS = 0.5
RESTART_READY_SECONDS = 180.0
TOKEN_MARGIN_SECONDS = 60.0


# --- the demo queries ------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoQuery:
    """A query an analyst sends: its text (``{lsoa}`` becomes a random area), who asks it."""

    name: str
    purpose: str
    client: str
    text: str
    weight: int
    steps: tuple[tuple[str, ...], ...] = ()  # the node fetches of its plan, step by step

    def render(self, rng: random.Random) -> str:
        return self.text.replace("{lsoa}", rng.choice(LSOAS))


AIR = f"airQuality({PERIOD}) {{ pm25Mean pm10Mean no2Mean readingCount }}"
DEMO_QUERIES = (
    # docs/analyst-guide.md, "The area query": planning by LSOA across the three nodes.
    DemoQuery("planning, all areas", "service-planning", "analyst-cli", PLANNING_QUERY, 1),
    DemoQuery(
        "planning, 50 areas",
        "service-planning",
        "analyst-cli",
        f"{{ areas(first: 50) {{ code name footfall({PERIOD}) {AIR} encounterCount({PERIOD}) "
        f'openCareEpisodes(on: "{UNTIL}") }} }}',
        3,
    ),
    # docs/analyst-guide.md's first example, for a random area.
    DemoQuery(
        "one area",
        "service-planning",
        "analyst-cli",
        '{ areas(codes: ["{lsoa}"]) { code name footfall encounterCount openCareEpisodes } }',
        4,
    ),
    # README.md's example.
    DemoQuery(
        "five areas (README)",
        "service-planning",
        "analyst-cli",
        '{ areas(first: 5) { code name footfall(since: "2026-10-01", until: "2026-10-31") '
        "airQuality { pm25Mean no2Mean } encounterCount openCareEpisodes } }",
        2,
    ),
    # docs/cross-agency-counts.md: the gateway asks both nodes at once, outside any plan.
    DemoQuery(
        "cross-agency counts",
        "service-planning",
        "analyst-cli",
        '{ crossAgencyCounts(nodes: ["health", "social-care"], combine: INTERSECTION, '
        'since: "2026-08-15", until: "2026-10-20") { areaCode count suppressed } }',
        1,
        (("health", "social-care"),),
    ),
    # docs/analyst-guide.md, "People": research with the university's client ...
    DemoQuery(
        "research cohort",
        "research",
        "research-cli",
        "{ patients(first: 50) { pseudonym birthYear careEpisodes { serviceType start } } }",
        1,
    ),
    # ... and direct care with the hospital's clinical system client.
    DemoQuery(
        "direct care",
        "direct-care",
        "care-cli",
        "{ patients(first: 10) { pseudonym areaCode encounters { start classCode status } "
        "careEpisodes { serviceType start end } } }",
        1,
    ),
)


def planned(queries: Sequence[DemoQuery]) -> list[DemoQuery]:
    """Each query with its plan's node fetches (the gateway's own planner decides them)."""
    supergraph = local_supergraph()
    done = []
    for query in queries:
        if query.steps:
            done.append(query)
            continue
        plan = plan_operation(supergraph, query.render(random.Random(0)))
        steps = tuple(tuple(fetch.service for fetch in step) for step in plan.steps)
        done.append(dataclasses.replace(query, steps=steps))
    return done


# --- tokens ----------------------------------------------------------------------------------


class Token:
    """One analyst's access token for a purpose, fetched again shortly before it expires."""

    def __init__(self, issuer: str, data_dir: Path, purpose: str, client: str) -> None:
        self.issuer, self.data_dir, self.purpose, self.client = issuer, data_dir, purpose, client
        self.value, self.expires = "", 0.0

    async def get(self) -> str:
        if time.time() > self.expires - TOKEN_MARGIN_SECONDS:
            self.value = await asyncio.to_thread(
                request_token, self.issuer, self.data_dir, self.purpose, self.client
            )
            self.expires = float(_claims(self.value)["exp"])
        return self.value


def _claims(jwt: str) -> dict[str, Any]:
    """The JWT's payload, unverified: only to know when to fetch a new one."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- the load --------------------------------------------------------------------------------


@dataclass
class Outage:
    """The node's kill and restart, in seconds from the run's start."""

    node: str
    argv: list[str]
    killed_at: float = math.nan
    restarted_at: float = math.nan
    ready_at: float = math.nan
    argv_after: list[str] = dataclasses.field(default_factory=list)
    pid_before: int = 0
    pid_after: int = 0
    problem: str = ""

    @property
    def window(self) -> Window:
        end = self.ready_at if not math.isnan(self.ready_at) else math.inf
        return Window(self.killed_at, end) if not math.isnan(self.killed_at) else Window(0, 0)


def command_line(pid: int, started_with: list[str]) -> list[str]:
    """The process's argv as the kernel has it (Linux), else the argv it was started with."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return list(started_with)


def node_child(runner: TrustRunner, node: str) -> ChildProcess:
    for child in runner.children:
        if child.name == f"{node} node":
            return child
    raise SystemExit(f"no {node!r} node in this trust: {[c.name for c in runner.children]}")


async def outage(
    runner: TrustRunner, child: ChildProcess, record: Outage, at: float, down: float, t0: float
) -> None:
    """SIGKILL ``child`` at ``at`` s, start it again (same argv) ``down`` s later, await ready."""
    await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
    assert child.process is not None
    record.pid_before = child.process.pid
    record.argv = command_line(child.process.pid, child.argv)
    os.kill(child.process.pid, signal.SIGKILL)
    record.killed_at = time.monotonic() - t0
    await asyncio.to_thread(child.process.wait)
    console.print(f"  {record.killed_at:6.1f} s  {record.node} node killed (SIGKILL)")
    await asyncio.sleep(max(0.0, t0 + record.killed_at + down - time.monotonic()))
    child.start(runner.child_env())  # child.argv: what the trust started it with
    record.restarted_at = time.monotonic() - t0
    record.pid_after = child.process.pid
    console.print(f"  {record.restarted_at:6.1f} s  {record.node} node started again")
    try:
        await asyncio.to_thread(runner.wait_ready, [child], RESTART_READY_SECONDS)
    except Exception as error:  # reported, and the window stays open to the end
        record.problem = f"not ready again: {error}"
        console.print(f"[red]{record.node} node {record.problem}[/]")
        return
    finally:  # read once it runs, not in the instant between fork and exec
        record.argv_after = command_line(child.process.pid, child.argv)
    record.ready_at = time.monotonic() - t0
    console.print(f"  {record.ready_at:6.1f} s  {record.node} node ready again")


@dataclass
class Load:
    """What one run sends: how long, how many, how hard."""

    seconds: float
    analysts: int
    think: float
    timeout: float
    max_requests: int
    run_id: str


async def analyst(
    number: int,
    load: Load,
    client: httpx.AsyncClient,
    url: str,
    queries: Sequence[DemoQuery],
    tokens: dict[tuple[str, str], Token],
    outcomes: list[Outcome],
    t0: float,
    sent: list[int],
) -> None:
    """One analyst: a query, the answer (or the timeout), a pause; until the run ends."""
    rng = random.Random(f"{load.run_id}-{number}")
    weights = [query.weight for query in queries]
    deadline = t0 + load.seconds
    await asyncio.sleep(rng.uniform(0, max(load.think, 0.5)))  # not all at once, as in a pause
    count = 0
    while time.monotonic() < deadline and sent[0] < load.max_requests:
        sent[0] += 1
        count += 1
        query = rng.choices(queries, weights)[0]
        token = await tokens[(query.purpose, query.client)].get()
        request_id = f"load-{load.run_id}-{number:03d}-{count:06d}"
        headers = {
            "Authorization": f"Bearer {token}",
            "Purpose": query.purpose,
            "X-Request-Id": request_id,
            "Content-Type": "application/json",
        }
        body = json.dumps({"query": query.render(rng)}).encode()
        outcomes.append(await send(client, url, body, headers, query.name, request_id, load, t0))
        if load.think > 0:
            pause = rng.uniform(0, 2 * load.think)
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))


async def send(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    name: str,
    request_id: str,
    load: Load,
    t0: float,
) -> Outcome:
    started = time.monotonic()
    status, failure, codes, nodes = None, None, frozenset(), frozenset()
    try:
        async with asyncio.timeout(load.timeout):
            response = await client.post(url, content=body, headers=headers)
        status = response.status_code
        codes, nodes = read_response_errors(response.content)
    except (TimeoutError, httpx.TimeoutException):
        failure = "client timeout"
    except httpx.HTTPError as error:
        failure = type(error).__name__
    return Outcome(
        name, request_id, started - t0, time.monotonic() - t0, status, failure, codes, nodes
    )


async def preflight(
    client: httpx.AsyncClient, url: str, queries: Sequence[DemoQuery], tokens, run_id: str
) -> None:
    """Each query once, which must answer in full: a broken query would only measure errors."""
    for query in queries:
        token = await tokens[(query.purpose, query.client)].get()
        response = await client.post(
            url,
            json={"query": query.render(random.Random(0))},
            headers={
                "Authorization": f"Bearer {token}",
                "Purpose": query.purpose,
                "X-Request-Id": f"preflight-{run_id}-{query.name.replace(' ', '-')[:40]}",
            },
        )
        codes, _ = read_response_errors(response.content)
        if response.status_code != 200 or codes:
            raise SystemExit(
                f"the demo query {query.name!r} does not answer in full before the load: "
                f"HTTP {response.status_code} {response.text[:400]}"
            )


async def run_load(
    args: argparse.Namespace, data_dir: Path, run: dict[str, Any], runner: TrustRunner
) -> dict[str, Any]:
    queries = planned(DEMO_QUERIES)
    load = Load(
        args.seconds, args.analysts, args.think, args.timeout, args.max_requests, uuid.uuid4().hex
    )
    started = time.perf_counter()
    tokens: dict[int, dict[tuple[str, str], Token]] = {
        number: {
            (q.purpose, q.client): Token(run["identity"], data_dir, q.purpose, q.client)
            for q in queries
        }
        for number in range(load.analysts)
    }
    gate = asyncio.Semaphore(8)

    async def fetch(token: Token) -> None:
        async with gate:
            await token.get()

    await asyncio.gather(*(fetch(t) for book in tokens.values() for t in book.values()))
    token_seconds = time.perf_counter() - started
    count = sum(len(book) for book in tokens.values())
    console.print(
        f"{count} access tokens from the identity server in {token_seconds:.1f} s "
        f"({load.analysts} analysts x {count // load.analysts} purposes)"
    )
    # Idle connections are dropped after 2 s, as the gateway's own node client does, well
    # before a server closes them (uvicorn: 5 s and more): a request is never sent on a
    # connection the gateway is closing, which would fail before reaching it (ReadError).
    limits = httpx.Limits(
        max_connections=load.analysts,
        max_keepalive_connections=load.analysts,
        keepalive_expiry=2.0,
    )
    async with httpx.AsyncClient(limits=limits, timeout=load.timeout) as client:
        await preflight(client, run["gateway"], queries, tokens[0], load.run_id)
        child = node_child(runner, args.node)
        record = Outage(args.node, list(child.argv))
        outcomes: list[Outcome] = []
        sent = [0]
        console.print(
            f"load: {load.analysts} analysts for {load.seconds:.0f} s (think {load.think} s, "
            f"timeout {load.timeout} s); {args.node} node killed at {args.outage_at:.1f} s, "
            f"started again {args.outage_seconds:.1f} s later"
        )
        t0 = time.monotonic()
        killer = asyncio.create_task(
            outage(runner, child, record, args.outage_at, args.outage_seconds, t0)
        )
        await asyncio.gather(
            *(
                analyst(n, load, client, run["gateway"], queries, tokens[n], outcomes, t0, sent)
                for n in range(load.analysts)
            )
        )
        elapsed = time.monotonic() - t0
        if not killer.done():  # the restart outlasts the load: wait for it, untimed
            await killer
    return {
        "load": load,
        "queries": queries,
        "outcomes": outcomes,
        "elapsed": elapsed,
        "outage": record,
        "token_seconds": token_seconds,
        "tokens": count,
    }


# --- the ledgers -----------------------------------------------------------------------------


def ledger_entries(data_dir: Path, run_id: str) -> dict[str, dict[str, int]]:
    """Per part (gateway and nodes): this run's request ids and how many entries carry each."""
    found: dict[str, dict[str, int]] = {}
    for part in PARTS:
        engine = create_store_engine(part_settings(data_dir, part).effective_database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text(
                        "SELECT request_id, count(*) FROM audit_event "
                        "WHERE request_id LIKE :prefix GROUP BY request_id"
                    ),
                    {"prefix": f"load-{run_id}-%"},
                )
                found[part] = {row[0]: row[1] for row in rows}
        finally:
            engine.dispose()
    return found


def audit(
    data_dir: Path, result: dict[str, Any]
) -> tuple[AuditTally, list[Any], dict[str, int], int]:
    """The chains verified, and each request's entries matched to what it must have left."""
    checks = verify_ledgers(data_dir)
    found = ledger_entries(data_dir, result["load"].run_id)
    steps = {query.name: query.steps for query in result["queries"]}
    tally = AuditTally()
    known = set()
    for outcome in result["outcomes"]:
        known.add(outcome.request_id)
        entries = {part: found[part].get(outcome.request_id, 0) for part in found}
        audit_request(outcome, steps[outcome.query], entries, tally)
    strays = sum(1 for ids in found.values() for rid in ids if rid not in known)
    return tally, checks, {part: sum(ids.values()) for part, ids in found.items()}, strays


# --- report ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def figures(outcomes: Sequence[Outcome], seconds: float) -> dict[str, Any]:
    times = [o.seconds for o in outcomes]
    return {
        "requests": len(outcomes),
        "ok": sum(o.is_ok for o in outcomes),
        "errors": sum(not o.is_ok for o in outcomes),
        "http_5xx": sum(1 for o in outcomes if o.status and o.status >= 500),
        "p50_ms": percentile(times, 0.50) * 1000,
        "p95_ms": percentile(times, 0.95) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "mean_ms": statistics.fmean(times) * 1000 if times else math.nan,
        "seconds": seconds,
        "requests_per_second": len(outcomes) / seconds if seconds else math.nan,
        "ok_per_second": sum(o.is_ok for o in outcomes) / seconds if seconds else math.nan,
    }


def timeline(
    outcomes: Sequence[Outcome], seconds: float, window: Window, bins: int = 10
) -> list[dict[str, Any]]:
    """The run in ``bins`` slices by send time: how the trust fared before, in and after."""
    width = seconds / bins
    by_slice: list[list[Outcome]] = [[] for _ in range(bins)]
    for outcome in outcomes:
        by_slice[min(bins - 1, int(outcome.started // width))].append(outcome)
    slices = []
    for number, sent in enumerate(by_slice):
        start, end = number * width, (number + 1) * width
        named: Counter[str] = Counter(node for o in sent for node in o.failed_nodes)
        slices.append(
            {
                "from": start,
                "to": end,
                "outage": window.overlaps(start, end),
                "requests": len(sent),
                "ok": sum(o.is_ok for o in sent),
                "p50_ms": percentile([o.seconds for o in sent], 0.5) * 1000,
                "p95_ms": percentile([o.seconds for o in sent], 0.95) * 1000,
                "nodes_named": dict(named),
            }
        )
    return slices


def summarise(result: dict[str, Any], audited: tuple, seeded: dict[str, Any]) -> dict[str, Any]:
    outcomes: list[Outcome] = result["outcomes"]
    record: Outage = result["outage"]
    window, elapsed = record.window, result["elapsed"]
    during = [o for o in outcomes if window.overlaps(o.started, o.ended)]
    outside = [o for o in outcomes if not window.overlaps(o.started, o.ended)]
    covered = window.seconds_within(elapsed)
    errors: Counter[tuple[str, str, str]] = Counter()
    for outcome in outcomes:
        where = "during" if window.overlaps(outcome.started, outcome.ended) else "outside"
        for kind, what in error_kinds(outcome):
            errors[(kind, what, where)] += 1
    tally, checks, entries, strays = audited
    load: Load = result["load"]
    overall = figures(outcomes, elapsed)
    outside_figures = figures(outside, elapsed - covered)
    unaudited = tally.count(UNAUDITED)
    return {
        "settings": {
            "analysts": load.analysts,
            "seconds": load.seconds,
            "think_seconds": load.think,
            "timeout_seconds": load.timeout,
            "max_requests": load.max_requests,
            "run_id": load.run_id,
        },
        "data": seeded["counts"],
        "seeding": {
            "cached": seeded["cached"],
            "seconds": seeded["total"],
            "parts": seeded["seconds"],
            "first_up_seconds": seeded["prepare"],
        },
        "outage": {
            "node": record.node,
            "killed_at": record.killed_at,
            "restarted_at": record.restarted_at,
            "ready_at": record.ready_at,
            "pids": [record.pid_before, record.pid_after],
            "argv": record.argv,
            "argv_after": record.argv_after,
            "same_argv": record.argv == record.argv_after,
            "problem": record.problem,
        },
        "overall": overall,
        "outside_outage": outside_figures,
        "during_outage": figures(during, covered),
        "by_query": {
            query.name: figures([o for o in outcomes if o.query == query.name], elapsed)
            for query in result["queries"]
        },
        "timeline": timeline(outcomes, load.seconds, window),
        "errors": [
            {"kind": kind, "what": what, "where": where, "count": count}
            for (kind, what, where), count in sorted(errors.items())
        ],
        "audit": {
            "chains": [
                {
                    "part": check.part,
                    "entries_checked": check.entries_checked,
                    "intact": check.is_intact,
                    "first_broken_seq": check.first_broken_seq,
                    "problem": check.problem,
                }
                for check in checks
            ],
            "entries_this_run": entries,
            "verdicts": {part: dict(counter) for part, counter in tally.verdicts.items()},
            "entries_with_unknown_ids": strays,
        },
        "targets": {
            "no_5xx": overall["http_5xx"] == 0,
            "no_unaudited_request": unaudited == 0 and all(c.is_intact for c in checks),
            "p95_outside_outage_under_500ms": outside_figures["p95_ms"] < TARGET_P95_SECONDS * 1000,
        },
        "tokens": {"count": result["tokens"], "seconds": result["token_seconds"]},
        "load_average": os.getloadavg(),
    }


def mark(ok: bool) -> str:
    return "[green]✓[/]" if ok else "[red]✗[/]"


def report(summary: dict[str, Any]) -> None:
    data, seeding = summary["data"], summary["seeding"]
    console.print(
        f"[bold]data[/]: council {data['council']['reading']:,} readings; health "
        f"{data['health']['person']:,} patients, {data['health']['encounter']:,} encounters; "
        f"social care {data['social-care']['care recipients']:,} people, "
        f"{data['social-care']['care_episode']:,} episodes"
    )
    where = "cached, seeded earlier in" if seeding["cached"] else "seeded now in"
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in seeding["parts"].items())
    console.print(
        f"[bold]seeding[/]: {where} {seeding['seconds']:.1f} s ({parts}); "
        f"first `up` {seeding['first_up_seconds']:.1f} s"
    )
    outage = summary["outage"]
    console.print(
        f"[bold]outage[/]: {outage['node']} node (pid {outage['pids'][0]}) killed at "
        f"{outage['killed_at']:.1f} s, started again at {outage['restarted_at']:.1f} s "
        f"(pid {outage['pids'][1]}, {'same' if outage['same_argv'] else '[red]another[/]'} "
        f"argv), ready at {outage['ready_at']:.1f} s "
        f"{outage['problem']}"
    )

    settings = summary["settings"]
    table = Table(
        title=f"{settings['analysts']} analysts, {settings['seconds']:.0f} s, think "
        f"{settings['think_seconds']} s (latency of every request, answered or not)",
        title_justify="left",
    )
    columns = ("", "requests", "ok", "errors", "5xx", "p50 ms", "p95 ms", "p99 ms", "req/s")
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")

    def row(name: str, figures: dict[str, Any], note: str = "") -> None:
        table.add_row(
            name,
            str(figures["requests"]),
            str(figures["ok"]),
            str(figures["errors"]),
            str(figures["http_5xx"]),
            ms(figures["p50_ms"] / 1000),
            ms(figures["p95_ms"] / 1000) + note,
            ms(figures["p99_ms"] / 1000),
            f"{figures['requests_per_second']:.1f}",
        )

    targets = summary["targets"]
    row("overall", summary["overall"])
    row(
        "outside the outage",
        summary["outside_outage"],
        f" (< 500 {mark(targets['p95_outside_outage_under_500ms'])})",
    )
    row("during the outage", summary["during_outage"])
    table.add_section()
    for name, figures_ in summary["by_query"].items():
        row(f"  {name}", figures_)
    console.print(table)

    slices = Table(title="over time, by send time", title_justify="left")
    for column in ("seconds", "", "requests", "ok", "p50 ms", "p95 ms", "nodes named in errors"):
        slices.add_column(
            column, justify="left" if column in ("", "nodes named in errors") else "right"
        )
    for piece in summary["timeline"]:
        slices.add_row(
            f"{piece['from']:.0f}-{piece['to']:.0f}",
            "outage" if piece["outage"] else "",
            str(piece["requests"]),
            str(piece["ok"]),
            ms(piece["p50_ms"] / 1000),
            ms(piece["p95_ms"] / 1000),
            ", ".join(f"{node} {n}" for node, n in sorted(piece["nodes_named"].items())),
        )
    console.print(slices)

    errors = Table(title="errors by kind", title_justify="left")
    for column in ("kind", "what", "outside the outage", "during the outage"):
        errors.add_column(column, justify="right" if "outage" in column else "left")
    kinds: dict[tuple[str, str], dict[str, int]] = {}
    for error in summary["errors"]:
        kinds.setdefault((error["kind"], error["what"]), {})[error["where"]] = error["count"]
    for (kind, what), counts in kinds.items():
        errors.add_row(kind, what, str(counts.get("outside", 0)), str(counts.get("during", 0)))
    if not kinds:
        errors.add_row("none", "", "0", "0")
    console.print(errors)

    ledgers = Table(title="audit ledgers (entries matched by X-Request-Id)", title_justify="left")
    for column in ("ledger", "chain", "entries checked", "this run's entries", "verdicts"):
        ledgers.add_column(column, justify="right" if "entries" in column else "left")
    audit_ = summary["audit"]
    for chain in audit_["chains"]:
        part = chain["part"]
        verdicts = audit_["verdicts"].get(part, {})
        ledgers.add_row(
            part,
            f"verifies {mark(True)}"
            if chain["intact"]
            else f"[red]broken at {chain['first_broken_seq']} {chain['problem'] or ''}[/]",
            f"{chain['entries_checked']:,}",
            f"{audit_['entries_this_run'].get(part, 0):,}",
            ", ".join(f"{k} {v:,}" for k, v in sorted(verdicts.items())),
        )
    console.print(ledgers)
    if audit_["entries_with_unknown_ids"]:
        console.print(
            f"[yellow]{audit_['entries_with_unknown_ids']} entries carry this run's id prefix "
            "but no request the analysts sent[/]"
        )

    unaudited = sum(v.get(UNAUDITED, 0) for v in audit_["verdicts"].values())
    console.print(
        f"[bold]targets[/]: no 5xx {mark(targets['no_5xx'])} "
        f"({summary['overall']['http_5xx']}); no unaudited request "
        f"{mark(targets['no_unaudited_request'])} ({unaudited}); p95 under 500 ms outside the "
        f"outage {mark(targets['p95_outside_outage_under_500ms'])} "
        f"({summary['outside_outage']['p95_ms']:.0f} ms)"
    )
    console.print(
        f"load average {' / '.join(f'{v:.1f}' for v in summary['load_average'])} (1 / 5 / 15 "
        f"min) on {os.cpu_count()} CPUs at the end: the load client, the trust and whatever "
        "else runs here share them"
    )


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, help="how long the load runs (default 300)")
    parser.add_argument("--analysts", type=int, default=50, help="concurrent analysts")
    parser.add_argument(
        "--think", type=float, default=10.0, help="mean pause between an analyst's queries, s"
    )
    parser.add_argument("--quick", action="store_true", help="a 30 s smoke run")
    parser.add_argument("--node", default="health", help="the node killed and restarted")
    parser.add_argument(
        "--outage-at", type=float, help="when the node is killed, s into the run (default 40%%)"
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        help="from the kill to the restart, s (default 20; 8 with --quick)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="a request's deadline, s")
    parser.add_argument(
        "--max-requests", type=int, default=500_000, help="the most requests sent in all"
    )
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "datatrust-bench",
        help="where seeded data dirs are kept (shared with bench/federation.py)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="seed a fresh data dir and delete it after"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 30.0 if args.quick else 300.0
    if args.outage_seconds is None:
        args.outage_seconds = 8.0 if args.quick else 20.0
    if args.outage_at is None:
        args.outage_at = 0.4 * args.seconds
    problems = [
        f"--{name.replace('_', '-')} must be positive"
        for name in ("seconds", "analysts", "timeout", "max_requests", "outage_seconds")
        if getattr(args, name) <= 0
    ]
    if args.think < 0:
        problems.append("--think cannot be negative")
    if not 0 <= args.outage_at < args.seconds:
        problems.append(f"--outage-at must fall inside the run (0 to {args.seconds:g} s)")
    if args.node not in ("council", "health", "social-care"):
        problems.append("--node is one of council, health, social-care")
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    console.print(
        f"machine: {os.cpu_count()} CPUs, load average "
        f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} at the start"
    )
    data_dir, seeded = seeded_dir(args, SeedPlan(readings=args.readings, persons=args.persons))
    try:
        with served_trust_processes(data_dir) as (run, runner):
            result = asyncio.run(run_load(args, data_dir, run, runner))
        # The trust has stopped: the ledgers are as the run left them.
        summary = summarise(result, audit(data_dir, result), seeded)
    finally:
        if args.no_cache:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    report(summary)
    if args.json:
        args.json.write_text(json.dumps(_jsonable(summary), indent=1, allow_nan=False) + "\n")
        console.print(f"figures written to {args.json}")


def _jsonable(value: Any) -> Any:
    """The summary as strict JSON: NaN (no sample) and infinity become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
