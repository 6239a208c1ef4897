"""Cold start of `datatrust up`, and the example query through the gateway vs one node.

    python bench/federated_query.py [--requests N]

Starts a trust on free loopback ports in a temporary directory, then times the README's
example query through the gateway (three nodes, two entity fetches) against the council's
part of the same query sent to the council node directly (the baseline).
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
from pathlib import Path

import httpx

from datatrust._demo_trust import EXAMPLE_PURPOSE, EXAMPLE_QUERY
from datatrust.network import client_ssl_context
from federation import free_base_port  # bench/federation.py

COUNCIL_PART = (
    '{ areas(first: 5) { code name footfall(since: "2026-10-01", until: "2026-10-31") '
    "airQuality { pm25Mean no2Mean } } }"
)


def timed(client: httpx.Client, url: str, query: str, n: int, token: str) -> list[float]:
    headers = {"Purpose": EXAMPLE_PURPOSE, "Authorization": f"Bearer {token}"}
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.post(url, json={"query": query}, headers=headers)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        assert "errors" not in response.json(), response.text
    return seconds


def describe(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"{name:<28} p50 {statistics.median(seconds) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        base = free_base_port()
        argv = [
            sys.executable,
            "-m",
            "datatrust",
            "up",
            "--data-dir",
            folder,
            "--base-port",
            str(base),
        ]
        for label in ("cold start (empty data dir)", "warm start (data loaded)"):
            started = time.perf_counter()
            up = subprocess.Popen(
                argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}
            )
            for line in up.stdout:
                if "Press Ctrl-C" in line:
                    break
            print(f"{label:<28} {time.perf_counter() - started:6.2f} s to ready")
            if label.startswith("cold"):
                up.send_signal(signal.SIGINT)
                up.wait()
        try:
            run = json.loads((data_dir / "run.json").read_text())
            token = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "datatrust",
                    "token",
                    "--purpose",
                    EXAMPLE_PURPOSE,
                    "--data-dir",
                    folder,
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            tls = run["tls"]
            tool = client_ssl_context(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"]))
            with (
                httpx.Client(timeout=30) as client,
                httpx.Client(timeout=30, verify=tool) as node_client,
            ):
                timed(client, run["gateway"], EXAMPLE_QUERY, 10, token)  # warm up
                gateway = timed(client, run["gateway"], EXAMPLE_QUERY, args.requests, token)
                node = timed(
                    node_client, run["nodes"]["council"], COUNCIL_PART, args.requests, token
                )
            print(describe("council node, direct (mTLS)", node))
            print(describe("gateway, three nodes", gateway))
            ratio = statistics.median(gateway) / statistics.median(node)
            print(f"gateway / direct node (p50)  {ratio:.2f}x")
        finally:
            up.send_signal(signal.SIGINT)
            up.wait()


if __name__ == "__main__":
    main()
