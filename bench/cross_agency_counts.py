"""Cross-agency counts against the same nodes' plain per-area counts, in one run.

    python bench/cross_agency_counts.py [--requests N]

Starts a demo trust (``datatrust up``) on free loopback ports in a temporary directory and
times, through the gateway with the analyst's service-planning token:

- the baseline: every area's encounter count (health) and open care episodes (social care),
  the per-area counts the same two nodes give today, asked of both nodes at once (one
  ``_entities`` call each, over mutual TLS, as the gateway would fan out);
- ``crossAgencyCounts`` over health and social care, INTERSECTION (padded) and UNION.

Prints p50/p95 of each and the ratio of each count to the baseline's p50.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from federated_query import timed  # bench/federated_query.py (service planning too)

from datatrust.network import client_ssl_context
from federation import free_base_port  # bench/federation.py

PURPOSE = "service-planning"
PERIOD = 'since: "2026-08-01", until: "2026-10-31"'
ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code %s } } }"
BASELINE = {
    "health": ENTITIES % f"encounterCount({PERIOD})",
    "social-care": ENTITIES % "openCareEpisodes",
}
OVERLAP = (
    '{ crossAgencyCounts(nodes: ["health", "social-care"], combine: %s, '
    f"{PERIOD}) {{ areaCode count suppressed }} }}"
)


def timed_nodes(
    client: httpx.Client, nodes: dict[str, str], codes: list[str], n: int, token: str
) -> list[float]:
    """Both nodes' per-area counts, asked at once; the time until both have answered."""
    headers = {"Purpose": PURPOSE, "Authorization": f"Bearer {token}"}
    variables = {"r": [{"__typename": "Area", "code": code} for code in codes]}

    def ask(node: str) -> None:
        body = {"query": BASELINE[node], "variables": variables}
        response = client.post(nodes[node], json=body, headers=headers)
        response.raise_for_status()
        assert "errors" not in response.json(), response.text

    seconds = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(n):
            started = time.perf_counter()
            list(pool.map(ask, BASELINE))
            seconds.append(time.perf_counter() - started)
    return seconds


def describe(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    return f"{name:<36} p50 {statistics.median(seconds) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        argv = [sys.executable, "-m", "datatrust", "up", "--data-dir", folder]
        argv += ["--base-port", str(free_base_port())]
        up = subprocess.Popen(
            argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}
        )
        try:
            for line in up.stdout or ():
                if "Press Ctrl-C" in line:
                    break
            run = json.loads((Path(folder) / "run.json").read_text())
            token = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "datatrust",
                    "token",
                    "--purpose",
                    PURPOSE,
                    "--client",
                    "analyst-cli",
                    "--data-dir",
                    folder,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            tls = run["tls"]
            tool = client_ssl_context(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"]))
            url = run["gateway"]
            results = {}
            with httpx.Client(timeout=60, verify=tool) as client:
                first = client.post(
                    url,
                    json={"query": OVERLAP % "INTERSECTION"},
                    headers={"Purpose": PURPOSE, "Authorization": f"Bearer {token}"},
                ).json()
                codes = [c["areaCode"] for c in first["data"]["crossAgencyCounts"]]
                timed_nodes(client, run["nodes"], codes, 3, token)  # warm up
                results["baseline: both nodes' per-area counts"] = timed_nodes(
                    client, run["nodes"], codes, args.requests, token
                )
                for name, query in (
                    ("crossAgencyCounts INTERSECTION", OVERLAP % "INTERSECTION"),
                    ("crossAgencyCounts UNION", OVERLAP % "UNION"),
                ):
                    timed(client, url, query, 3, token)  # warm up
                    results[name] = timed(client, url, query, args.requests, token)
            print(f"{len(codes)} areas, {args.requests} requests each")
            baseline = statistics.median(results["baseline: both nodes' per-area counts"])
            for name, seconds in results.items():
                ratio = statistics.median(seconds) / baseline
                print(f"{describe(name, seconds)}   {ratio:5.2f}x baseline")
        finally:
            up.send_signal(signal.SIGINT)
            up.wait()


if __name__ == "__main__":
    main()
