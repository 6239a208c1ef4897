"""How a served process logs: one JSON object per line, or the human format, by setting.

``datatrust serve node|gateway|identity`` and the portal log JSON by default, one object
per line with the time, level, logger, message, the request id and the trace and span ids
of the request being answered (so a line leads to its audit entries and its trace), and
any ``extra`` fields the call gave. ``DATATRUST_LOG_FORMAT=text`` gives the human format
instead, ``DATATRUST_LOG_LEVEL`` the level (INFO by default).

Log calls carry counts, codes and ids, never payloads or personal identifiers; the
formatter adds nothing from the request itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from datatrust._tracing import current_ids, current_request_id
from datatrust.errors import SettingsError

__all__ = ["LOG_FORMATS", "JsonLogFormatter", "configure_logging"]

LOG_FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonLogFormatter(logging.Formatter):
    """A log record as one line of JSON (see the module docstring for its keys)."""

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_ids()
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
            "trace_id": trace_id,
            "span_id": span_id,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(
    default_format: str = "json", environ: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """Send this process's logs to stderr in the chosen format; return uvicorn's log_config.

    With JSON, uvicorn's own loggers propagate to the same handler (``log_config=None``),
    so every line of the process is JSON; with text, uvicorn keeps its own configuration.
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get("DATATRUST_LOG_FORMAT", default_format).strip().lower()
    if chosen not in LOG_FORMATS:
        raise SettingsError(
            f"DATATRUST_LOG_FORMAT is {chosen!r}; set it to one of: {', '.join(LOG_FORMATS)}"
        )
    root = logging.getLogger()
    level_name = environ.get("DATATRUST_LOG_LEVEL", "").strip().upper()
    level = logging.getLevelNamesMapping().get(level_name or "INFO")
    if level is None:
        raise SettingsError(
            f"DATATRUST_LOG_LEVEL is {level_name!r}; set it to DEBUG, INFO, WARNING or ERROR"
        )
    if not level_name:  # INFO by default, or more if whoever started us asked for more
        level = min(level, root.level)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if chosen == "json":
        return None
    from uvicorn.config import LOGGING_CONFIG

    return LOGGING_CONFIG
