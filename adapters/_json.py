"""JSON message streams as the LoRaWAN and presence feeds deliver them, and JSON-path helpers.

One input may be a single message (a webhook body, an MQTT payload, pretty-printed or not),
a JSON array of messages, or NDJSON (one message per line, as captured by a subscriber).
A line that is not JSON costs only itself; a document that cannot be split into messages at
all is a ``SourceError`` for the whole input.

NDJSON lines are decoded with ``orjson`` when it is installed (three times faster than the
standard library) and with :mod:`json` otherwise, or when ``orjson`` refuses a line (so a
bad line gets the standard library's error, and ``NaN`` and the like still decode as they
always have). One difference remains, which is why a caller must ask for it (``exact=False``):
``orjson`` returns an integer beyond 64 bits as a float. The LoRaWAN readers ask for it, use
its result only where every number they read is well inside that range, and decode the raw
line again with :mod:`json` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

from datatrust.errors import RecordError, SourceError

from ._records import InvalidField

try:
    import orjson
except ImportError:  # pragma: no cover - the standard library is correct, only slower
    orjson = None

__all__ = [
    "Message",
    "exact_json",
    "json_messages",
    "number",
    "object_at",
    "optional_number",
    "orjson_in_use",
    "whole_number",
]

Message = tuple[str, str, Any]
"""``(location, raw text, parsed value or RecordError)``."""


def orjson_in_use() -> bool:
    """Whether ``json_messages(..., exact=False)`` decodes with ``orjson``."""
    return orjson is not None


def exact_json(raw: str, message: Any) -> Any:
    """``message`` as the standard library decodes ``raw``, the text it was decoded from.

    For a message an ``exact=False`` reader's fast path passed over: the general path then
    sees exactly what it always has. A ``RecordError`` (a line that is not JSON) stays as it is.
    """
    if orjson is None or isinstance(message, RecordError):
        return message
    return json.loads(raw)


def _fast_loads(line: str) -> Any:
    try:
        return orjson.loads(line)  # type: ignore[union-attr]
    except orjson.JSONDecodeError:  # type: ignore[union-attr]
        return json.loads(line)


def json_messages(body: str, source: str, *, exact: bool = True) -> Iterator[Message]:
    """Each message of ``body`` with its location and raw text, in order.

    ``exact=False`` lets NDJSON lines be decoded by ``orjson`` (see the module docstring).
    """
    stripped = body.strip()
    if not stripped:
        return iter(())
    if stripped[0] == "[":
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise SourceError(
                f"{source}:{error.lineno}: not a JSON array ({error.msg}); "
                "send NDJSON or one valid JSON array",
                location=source,
            ) from error
        return (
            (f"{source}#/{index}", json.dumps(item, ensure_ascii=False), item)
            for index, item in enumerate(items)
        )
    if stripped[0] != "{":
        raise SourceError(
            f"{source}:1: not JSON (starts with {stripped[:20]!r}); "
            "send one JSON message, a JSON array or NDJSON",
            location=source,
        )
    lines = _first_lines(stripped)
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError as error:
        if len(lines) > 1 and not _parses(lines[0]):
            raise SourceError(
                f"{source}:{error.lineno}: not JSON ({error.msg} at column {error.colno}); "
                "send one JSON message, a JSON array or NDJSON",
                location=source,
            ) from error
        return _ndjson(body, source, exact)
    if len(lines) > 1 and _parses(lines[0]):
        return _ndjson(body, source, exact)
    return iter([(source, stripped, whole)])


def _first_lines(text: str) -> list[str]:
    """The first two non-blank lines of ``text`` (all that the shape test needs)."""
    found: list[str] = []
    for line in text.splitlines():
        if line.strip():
            found.append(line)
            if len(found) == 2:
                break
    return found


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _ndjson(body: str, source: str, exact: bool) -> Iterator[Message]:
    loads = json.loads if exact or orjson is None else _fast_loads
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{source}:{number}"
        try:
            yield location, line, loads(line)
        except json.JSONDecodeError as error:
            yield (
                location,
                line,
                RecordError(
                    f"line is not JSON ({error.msg} at column {error.colno}); "
                    "each line must be one whole message",
                    location=location,
                ),
            )


def object_at(value: Any, path: str, what: str = "message") -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``InvalidField`` naming ``path``."""
    if not isinstance(value, dict):
        raise InvalidField(path, value, "must be a JSON object", f"send the whole {what}")
    return value


def number(value: Any, path: str) -> float:
    """A JSON number, or a number sent as a string (``"-47"``), as a float."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidField(path, value, "must be a number", "send a JSON number")
    return float(value)


def optional_number(value: Any, path: str) -> float | None:
    return None if value is None or value == "" else number(value, path)


def whole_number(value: Any, path: str) -> int:
    """A JSON integer, or one sent as a string (proto3 JSON sends 64-bit integers so)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidField(path, value, "must be a whole number >= 0", "send an unsigned integer")
    return value
