"""JSON in and out of the gateway with orjson: every answer is encoded once, every node's
answer decoded once, and the standard library takes several times as long for both.

A value orjson refuses (an integer past 64 bits, which only a misbehaving node could send)
falls back to the standard library, so the answer is the same either way.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["FastJSONResponse", "dumps", "loads"]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse and httpx's ``json=`` write it."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def loads(text: bytes | str) -> Any:
    """The value of a JSON document; ValueError (as ``json.loads`` raises) if it is not one."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson rejects and json takes (NaN), or the error


class FastJSONResponse(JSONResponse):
    """Starlette's JSONResponse, rendered by :func:`dumps`."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
