"""Ports for test servers come from below the ephemeral range, where no client takes them."""

from __future__ import annotations

import socket

from datatrust import _ports


def test_a_block_is_free_and_below_the_ephemeral_range():
    base = _ports.free_port_block(8)
    assert base >= 10_000
    assert base + 8 <= _ports._ephemeral_start()
    for port in range(base, base + 8):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_taken_port_is_never_handed_out(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", _ports.free_port()))
        taken.listen()
        port = taken.getsockname()[1]
        draws = iter([port - 10_000, port - 10_000, port - 10_000 + 1])
        monkeypatch.setattr(_ports.secrets, "randbelow", lambda _: next(draws))
        assert _ports.free_port() == port + 1
