"""Structured logs: one JSON object per line, for the app and for gunicorn alike.

The level comes from `SITE_EXTENDER_LOG_LEVEL` (default `info`). Fields passed with `extra=` become
keys of the object; gunicorn's access records become `method`, `path`, `status`, ... rather than a
formatted string. Request bodies are never logged at info level.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from typing import Any

from extender.config.settings import log_level

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime"}

ACCESS_FIELDS = {"h": "remote", "m": "method", "U": "path", "q": "query", "s": "status", "B": "bytes",
                 "a": "user_agent"}


def level() -> str:
    return log_level().upper()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            atoms = record.args
            entry["msg"] = "request"
            for atom, key in ACCESS_FIELDS.items():
                value = atoms.get(atom)
                if value not in (None, "-", ""):
                    entry[key] = int(value) if key in ("status", "bytes") and str(value).isdigit() else value
            if str(atoms.get("D", "")).isdigit():
                entry["duration_ms"] = round(int(atoms["D"]) / 1000, 3)
        else:
            entry["msg"] = record.getMessage()
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def gunicorn_logconfig() -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: every logger to stderr as JSON at the configured level."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "root": {"level": level(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level(), "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": level(), "handlers": ["json"], "propagate": False},
        },
    }
