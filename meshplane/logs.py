"""Log output for `meshplane serve`: readable text, or one JSON object per line.

Every module logs `event key=value ...` with %-arguments (see STYLE.md); the JSON formatter
lifts those pairs into fields, so a log pipeline can filter on node, type or version without
parsing free text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys

__all__ = ["JsonFormatter", "configure_logging"]

_PAIR = re.compile(r"(\w+)=(\S+)")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": message.split(" ", 1)[0],
            "message": message,
        }
        for key, value in _PAIR.findall(message):
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, fmt: str) -> None:
    """Send logs to stderr as text or JSON lines; only the CLI calls this."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
