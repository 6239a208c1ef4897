"""``datatrust up``: a whole trust on one machine, as separate processes on loopback.

The runner checks its ports, prepares each node's store (migrations, demo data through
ingest), starts every node and then the gateway as child processes, waits until each says
it is ready, writes ``run.json`` and waits. When the local MQTT broker answers, it also
runs the council's MQTT subscriber and a demo feed publishing live uplinks. SIGINT or
SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and removes
``run.json``; a child that dies on its own stops the whole trust with its log's last
lines, so a trust is never half up. Children marked ``stop_first`` (the feed, then the
subscriber) are stopped one at a time before the rest, so the subscriber commits what the
feed published before it goes and a restarted trust starts with nothing in flight.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from datatrust.errors import PortInUse, SourceError

__all__ = [
    "ChildProcess",
    "TrustRunner",
    "broker_unreachable_reason",
    "check_port_free",
    "health_url",
    "is_trust_running",
    "read_run_file",
    "serve_argv",
]

RUN_FILE = "run.json"
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


def check_port_free(host: str, port: int, what: str) -> None:
    """Raise PortInUse naming ``port`` and ``what`` needs it, if it cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn does: a port whose old connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"port {port} on {host} is already in use, and the {what} needs it; "
                "stop whatever is listening there or pick other ports with --base-port",
                port=port,
            ) from error


def read_run_file(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / RUN_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def broker_unreachable_reason(host: str, port: int, timeout: float = 1.0) -> str | None:
    """Why nothing accepts TCP connections at ``host:port``, or None when something does."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


@dataclass
class ChildProcess:
    name: str
    argv: list[str]
    ready_url: str | None
    log_path: Path
    process: subprocess.Popen | None = None
    stop_first: bool = False

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


@dataclass
class TrustRunner:
    """Starts, watches and stops the child processes of one local trust."""

    data_dir: Path
    children: list[ChildProcess] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    # The local tools' client certificate, for readiness checks of mutual-TLS nodes.
    ssl_context: ssl.SSLContext | None = None

    def child_env(self) -> dict[str, str]:
        """The environment of children: ours without DATATRUST_* (their TOML decides)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("DATATRUST_")}

    def start(self, child: ChildProcess) -> None:
        self.children.append(child)
        child.start(self.child_env())

    def wait_ready(
        self, children: list[ChildProcess], timeout: float = READY_TIMEOUT_SECONDS
    ) -> None:
        """Block until every child's readiness URL answers 200; fail fast if one dies."""
        deadline = time.monotonic() + timeout
        pending = list(children)
        with httpx.Client(timeout=2.0, verify=self.ssl_context or True) as client:
            while pending:
                for child in list(pending):
                    if child.ready_url is None:
                        pending.remove(child)
                        continue
                    code = child.exit_code()
                    if code is not None:
                        raise SourceError(
                            f"{child.name} exited with status {code} while starting; "
                            f"the end of {child.log_path}:\n{child.log_tail()}"
                        )
                    try:
                        if client.get(child.ready_url).status_code == 200:
                            pending.remove(child)
                    except httpx.HTTPError:
                        pass
                if self.stop_requested.is_set():
                    raise KeyboardInterrupt
                if pending and time.monotonic() > deadline:
                    names = ", ".join(c.name for c in pending)
                    raise SourceError(
                        f"{names} not ready after {timeout:.0f} s; see {pending[0].log_path}"
                    )
                if pending:
                    time.sleep(0.1)

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, frame: object) -> None:
            self.stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def watch(self, on_child_exit: Callable[[ChildProcess, int], None]) -> None:
        """Wait until a stop is requested or a child dies."""
        while not self.stop_requested.wait(0.25):
            for child in self.children:
                code = child.exit_code()
                if code is not None:
                    on_child_exit(child, code)
                    return

    def stop_all(self) -> None:
        """SIGTERM every child, wait, then SIGKILL what is left; reap them all."""
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in reversed([c for c in running if c.stop_first]):
            _stop_one(child)
        running = [c for c in running if not c.stop_first]
        for child in reversed(running):
            child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in running:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        (self.data_dir / RUN_FILE).unlink(missing_ok=True)

    def write_run_file(self, content: dict) -> Path:
        path = self.data_dir / RUN_FILE
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
        return path


def _stop_one(child: ChildProcess) -> None:
    child.process.terminate()
    try:
        child.process.wait(STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()


def serve_argv(kind: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "datatrust", "serve", kind, "--config", str(config)]


def is_trust_running(run: dict) -> bool:
    try:
        return httpx.get(health_url(run["gateway"]), timeout=1.0).status_code == 200
    except (httpx.HTTPError, KeyError, TypeError):
        return False


def health_url(graphql_url: str) -> str:
    return graphql_url.removesuffix("/graphql") + "/healthz"
