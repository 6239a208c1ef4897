"""One node as an operator runs it (``datatrust serve node --config``), for fault tests.

The settings file is written as docs/settings.md describes it; the node trusts the test's
real identity server and serves plain HTTP on loopback (no TLS settings), so a test can
ask it directly while it breaks what lies beneath it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from datatrust._ports import free_port

__all__ = ["AREA_QUERY", "NodeProcess", "wait_until"]

AREA_QUERY = (
    '{ _entities(representations: [{__typename: "Area", code: "E01009522"}]) '
    "{ ... on Area { footfall } } }"
)
"""A data query the council node answers (footfall of one area) for service planning."""


def wait_until(condition, seconds: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


class NodeProcess:
    """``datatrust serve node`` with a settings file of the test's own; ``url`` is its base."""

    def __init__(self, data_dir: Path, issuer_url: str, **settings: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.config = data_dir / "node.toml"
        lines = [
            'node_id = "council"',
            'agency = "Coventry City Council"',
            'host = "127.0.0.1"',
            f"port = {self.port}",
            f'data_dir = "{data_dir.as_posix()}"',
            *(f'{key} = "{value}"' for key, value in settings.items()),
            "[[issuers]]",
            f'issuer = "{issuer_url}"',
            f'jwks_url = "{issuer_url}/jwks.json"',
            'agencies = ["council", "health", "social-care", "housing", "university", "public"]',
        ]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log = data_dir / "node.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "datatrust", "serve", "node", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("DATATRUST_")},
            )
        wait_until(self._ready, 60, f"the node at {self.url} to be ready\n{self.log_text()}")

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the node exited:\n{self.log_text()}")
        return self.readyz().status_code == 200 if self.answers() else False

    def answers(self) -> bool:
        try:
            httpx.get(f"{self.url}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return True

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.url}/readyz", timeout=30)

    def ask(self, headers: dict[str, str], query: str = AREA_QUERY) -> httpx.Response:
        return httpx.post(f"{self.url}/graphql", json={"query": query}, headers=headers, timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
