"""A real OPA server for the tests that need one, or the reason there is none.

No package registry ships the OPA server, so these tests run where an ``opa`` binary is on
PATH (a server is started here on a free loopback port and stopped afterwards) or where
``DATATRUST_OPA_URL`` names a server to use, and skip otherwise, CI included. A server named
by ``DATATRUST_OPA_URL`` gets the test policy and documents loaded into it: point it at a
server kept for tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datatrust._ports import free_port as _free_port

OPA = shutil.which("opa")
OPA_URL = os.environ.get("DATATRUST_OPA_URL")
NO_OPA = "no OPA server: no opa binary on PATH and DATATRUST_OPA_URL is not set"
NO_OPA_BINARY = "no opa binary on PATH to start a server of the test's own"


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def started_opa(log: Path) -> Iterator[str]:
    """``opa run --server`` on a free loopback port, its output in ``log``; yields its URL."""
    assert OPA is not None, NO_OPA_BINARY
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [OPA, "run", "--server", "--addr", f"127.0.0.1:{port}", "--log-level", "error"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 20
            while not _healthy(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"opa did not start on {url}: {log.read_text()[-500:]}")
                time.sleep(0.05)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
