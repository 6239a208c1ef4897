"""Hosts for tests: Linux network namespaces on one switch, each with its own address.

A ``Network`` is a small LAN made of real kernel parts::

    <tag>-net           the switch: bridge br0, one veth port per host
    <tag>-<host>        one namespace per host: lo, and eth0 = 10.88.N.<i>/24
    this namespace      veth <tag>h = 10.88.N.1/24: the test process is the analyst's machine

so a request from one part to another leaves one network stack, crosses the bridge and enters
another, with that host's source address. ``<tag>`` carries the test process id, so two test
runs never share names, and namespaces left by a killed run are removed by the next one.

Faults act on that network only: ``link_down`` takes a host's eth0 down (a partition) and
``slow_link`` shapes its egress (``tc netem`` if the kernel has it, else ``tbf``); both put
the link back when their block ends, whatever happened in it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Host",
    "Network",
    "NetworkUnavailable",
    "link_down",
    "popen_in",
    "run_in",
    "slow_link",
]

SUBNET_PREFIX = "10.88"
INTERFACE = "eth0"
_TAG = re.compile(r"\Adt(\d+)-")


class NetworkUnavailable(Exception):
    """Namespaces or links cannot be made here (not root, no ``ip netns``): the reason."""


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str


def run_in(namespace: str, argv: Sequence[str], **options) -> subprocess.CompletedProcess:
    """Run ``argv`` inside ``namespace`` and wait (``check=True`` unless told otherwise)."""
    options.setdefault("check", True)
    options.setdefault("capture_output", True)
    options.setdefault("text", True)
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], **options)


def popen_in(namespace: str, argv: Sequence[str], **options) -> subprocess.Popen:
    """Start ``argv`` inside ``namespace``; ``ip netns exec`` execs it, so the pid is its own."""
    return subprocess.Popen(["ip", "netns", "exec", namespace, *argv], **options)


def _ip(*args: str, check: bool = True, tool: str = "ip") -> subprocess.CompletedProcess:
    result = subprocess.run([tool, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetworkUnavailable(f"`{tool} {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _tc(host: Host, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _ip("-n", host.namespace, "qdisc", *args, check=check, tool="tc")


class Network:
    """A bridge and one namespace per host; ``destroy`` removes all of it."""

    def __init__(self, hosts: dict[str, int]) -> None:
        """``hosts``: host name to the last byte of its address (2..254; .1 is this process)."""
        self.tag = f"dt{os.getpid()}"
        self.switch = f"{self.tag}-net"
        self.uplink = f"{self.tag}h"
        self.planned = hosts
        self.hosts: dict[str, Host] = {}
        self.subnet = ""

    def create(self) -> Network:
        if os.geteuid() != 0:
            raise NetworkUnavailable("network namespaces need root (this test process is not)")
        remove_leftovers()
        self.subnet = f"{SUBNET_PREFIX}.{_free_subnet_byte()}"
        try:
            self._create()
        except BaseException:
            self.destroy()
            raise
        return self

    def _create(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        port = "p1"
        _ip("link", "add", self.uplink, "type", "veth", "peer", "name", port, "netns", self.switch)
        self._plug(port)
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.uplink)
        _ip("link", "set", self.uplink, "up")
        for name, last in self.planned.items():
            host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{last}")
            _ip("netns", "add", host.namespace)
            self.hosts[name] = host
            port = f"p{last}"
            _ip(
                *("-n", self.switch, "link", "add", port, "type", "veth"),
                *("peer", "name", INTERFACE, "netns", host.namespace),
            )
            self._plug(port)
            _ip("-n", host.namespace, "link", "set", "lo", "up")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", INTERFACE)
            _ip("-n", host.namespace, "link", "set", INTERFACE, "up")

    def _plug(self, port: str) -> None:
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")

    def destroy(self) -> None:
        """Remove every namespace and link made; safe to call twice or after a failed create."""
        for host in self.hosts.values():
            _ip("netns", "del", host.namespace, check=False)
        _ip("netns", "del", self.switch, check=False)  # takes the uplink's peer, so the uplink
        _ip("link", "del", self.uplink, check=False)
        self.hosts.clear()


def _free_subnet_byte() -> int:
    """A third address byte no interface of this namespace uses yet (10.88.N.0/24)."""
    used = _ip("-4", "-o", "addr", "show").stdout
    start = os.getpid() % 250 + 1
    for offset in range(250):
        candidate = (start + offset) % 250 + 1
        if f" {SUBNET_PREFIX}.{candidate}." not in used:
            return candidate
    raise NetworkUnavailable(f"every {SUBNET_PREFIX}.N.0/24 subnet is in use here")


def remove_leftovers() -> None:
    """Remove namespaces of earlier test runs whose process is gone (a killed run's)."""
    names = _ip("netns", "list", check=False).stdout.split()
    for name in names:
        match = _TAG.match(name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            _ip("netns", "del", name, check=False)
            _ip("link", "del", f"dt{match.group(1)}h", check=False)


@contextmanager
def link_down(host: Host) -> Iterator[None]:
    """A partition: the host's only link is down until the block ends."""
    _ip("-n", host.namespace, "link", "set", INTERFACE, "down")
    try:
        yield
    finally:
        _ip("-n", host.namespace, "link", "set", INTERFACE, "up")


SLOW_NETEM = ("netem", "delay", "5s")
SLOW_TBF = ("tbf", "rate", "200bit", "burst", "1600", "latency", "10s")
"""25 bytes a second with a bucket of about one full frame: once that frame is spent, every
packet of the host's waits for its bytes to trickle out, so an answer of a few hundred bytes
takes many seconds (a link saturated by other traffic; packets past 10 s are dropped)."""


@contextmanager
def slow_link(host: Host) -> Iterator[str]:
    """The host's outgoing traffic shaped until the block ends; yields the qdisc used.

    ``netem`` (a plain delay) when this kernel has it, else a token bucket throttled to a
    trickle; ``tbf``'s bucket is drained first (one full frame from the host), so the very
    next answer already waits for the rate.
    """
    device = ("dev", INTERFACE, "root")
    kind = "netem"
    if _tc(host, "add", *device, *SLOW_NETEM, check=False).returncode != 0:
        _tc(host, "add", *device, *SLOW_TBF)
        kind = "tbf"
    try:
        if kind == "tbf":
            _drain_bucket(host)
        yield kind
    finally:
        _tc(host, "del", *device, check=False)


def _drain_bucket(host: Host) -> None:
    """Send one full-size datagram from ``host`` (to the uplink) so the bucket starts empty."""
    uplink = host.address.rsplit(".", 1)[0] + ".1"
    send = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.sendto(bytes(1400), ({uplink!r}, 9))"
    )
    run_in(host.namespace, [sys.executable, "-c", send])
