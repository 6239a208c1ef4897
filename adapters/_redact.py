"""Redaction of the two identifiers that must never be stored raw: MAC addresses and NHS numbers.

Quarantine keeps a copy of each bad record so a person can see what was wrong with it, and
the raw record is exactly where a MAC address or NHS number sits. :func:`redact` replaces
anything that looks like one, valid or not (a mistyped NHS number is still personal data),
so it over-redacts on purpose: a 10-digit epoch timestamp becomes ``[NHS]`` too.
"""

from __future__ import annotations

import re

__all__ = ["MAX_RAW_CHARS", "redact", "redacted_raw"]

MAX_RAW_CHARS = 10_000

_HEX = "[0-9A-Fa-f]"
_MAC = re.compile(
    # aa:bb:cc:dd:ee:ff or AA-BB-CC-DD-EE-FF (one separator throughout)
    rf"(?<![0-9A-Za-z]){_HEX}{{2}}([:-]){_HEX}{{2}}(?:\1{_HEX}{{2}}){{4}}(?![0-9A-Za-z])"
    # aabb.ccdd.eeff (Cisco)
    rf"|(?<![0-9A-Za-z.]){_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}}(?![0-9A-Za-z])"
    # aabbccddeeff (no separator; not the last group of a UUID)
    rf"|(?<![0-9A-Za-z-]){_HEX}{{12}}(?![0-9A-Za-z])"
)
# 10 digits, or 3-3-4 with spaces or dashes, not inside a longer run of digits.
_NHS = re.compile(r"(?<!\d)(?:\d{10}|\d{3}[ -]\d{3}[ -]\d{4})(?!\d)")
# What may be left of a MAC or NHS number cut in half at the end of a truncated text.
_PARTIAL_TAIL = re.compile(r"[0-9A-Fa-f:. -]{1,16}$")


def redact(text: str) -> str:
    """``text`` with every MAC address replaced by ``[MAC]`` and every NHS-number-like
    sequence (10 digits, or 3-3-4 spaced) by ``[NHS]``."""
    return _NHS.sub("[NHS]", _MAC.sub("[MAC]", text))


def redacted_raw(text: str, limit: int = MAX_RAW_CHARS) -> str:
    """The redacted start of a raw record, at most ``limit`` characters.

    The text is cut before it is redacted (records can be huge), and whatever hex digits or
    digits hang at the cut are dropped first: half an NHS number no longer looks like one,
    so it would otherwise survive redaction.
    """
    margin = limit * 2
    if len(text) > margin:
        text = _PARTIAL_TAIL.sub("", text[:margin])
    return redact(text)[:limit]
