"""Free TCP ports on loopback for servers started by tests, benches and tools.

Why not bind to port 0 and hand the number on? Port 0 gives a port from the kernel's
ephemeral range, the same range every outgoing connection on the machine takes its local
port from. Between the probe and the real server's bind (seconds, while a trust loads
its data) a client connection — to PostgreSQL, to another node — can take the port, and
the server then fails with "address already in use". Ports below the ephemeral range are
never handed to clients, so once found free they stay free unless another server binds
them on purpose.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

__all__ = ["free_port", "free_port_block"]

_LOWEST = 10_000
_DEFAULT_EPHEMERAL_START = 32_768
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_START


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_block(count: int = 1, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports, all below the ephemeral range.

    Candidates are random, so two test runs side by side rarely probe the same block.
    """
    top = _ephemeral_start() - count
    if top <= _LOWEST:
        top = 60_000 - count  # a machine whose ephemeral range starts low: best effort
    for _ in range(500):
        base = _LOWEST + secrets.randbelow(top - _LOWEST)
        if all(_bindable(port, host) for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports on {host} below {top + count}")


def free_port(host: str = "127.0.0.1") -> int:
    """One free port below the ephemeral range."""
    return free_port_block(1, host)
