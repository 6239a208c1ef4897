"""A whole demo trust as a user runs it (``datatrust up`` as a subprocess), for tests.

Shared by the tests that need real processes on loopback: the ``up`` tests and the
Apollo parity tests, so both start, ask and stop a trust the same way.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from datatrust._ports import free_port_block
from datatrust.network import client_ssl_context

__all__ = [
    "START_TIMEOUT_SECONDS",
    "Trust",
    "datatrust_env",
    "datatrust_token",
    "free_base_port",
    "post",
    "token",
    "tool_tls",
]

START_TIMEOUT_SECONDS = 180


def free_base_port() -> int:
    """A port P such that P..P+5 (gateway, three nodes, identity, portal) are free on loopback."""
    return free_port_block(6)


class Trust:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.base_port = free_base_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datatrust",
                "up",
                "--data-dir",
                str(data_dir),
                "--base-port",
                str(self.base_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.output: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("datatrust up ended early:\n" + "".join(self.output))
            self.output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        else:
            raise AssertionError("datatrust up not ready in time:\n" + "".join(self.output))
        self.run = json.loads((data_dir / "run.json").read_text())

    @property
    def curl(self) -> str:
        return next(line.strip() for line in self.output if line.startswith("curl "))

    def children(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        try:
            rest, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.output.append(rest)
        return self.process.returncode


def datatrust_env() -> dict[str, str]:
    """The environment with this Python's scripts first on PATH (for `datatrust token`)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}


def token(trust: Trust, purpose: str, client: str | None = None) -> str:
    """An access token through the real client credentials flow, as a user gets one."""
    result = datatrust_token(trust, purpose, client)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def datatrust_token(trust: Trust, purpose: str, client: str | None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "datatrust", "token", "--purpose", purpose]
    if client is not None:
        command += ["--client", client]
    return subprocess.run(
        [*command, "--data-dir", str(trust.data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


TLS_CONTEXTS: dict[str, ssl.SSLContext] = {}


def tool_tls(run: dict) -> ssl.SSLContext:
    """The local tools' client certificate from run.json, as a user's script would use it."""
    tls = run["tls"]
    if tls["cert"] not in TLS_CONTEXTS:
        TLS_CONTEXTS[tls["cert"]] = client_ssl_context(
            Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"])
        )
    return TLS_CONTEXTS[tls["cert"]]


def post(
    url: str,
    query: str,
    purpose: str | None,
    variables: dict | None = None,
    *,
    bearer: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Response:
    headers = {"Purpose": purpose} if purpose is not None else {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=30,
        verify=verify,
    )
