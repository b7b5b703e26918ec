"""JSON log lines lift the key=value pairs every module logs into fields."""

from __future__ import annotations

import json
import logging

from meshplane.logs import JsonFormatter


def test_json_lines_carry_the_pairs_as_fields() -> None:
    record = logging.LogRecord(
        "meshplane.xds.server",
        logging.WARNING,
        __file__,
        1,
        "nack node=%s stream=%d type=%s version=%s error=%s",
        ("edge-1", 3, "clusters", "abc123", "bad cluster"),
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "nack"
    assert line["level"] == "warning"
    assert line["node"] == "edge-1"
    assert line["type"] == "clusters"
    assert line["version"] == "abc123"
    assert line["message"].endswith("error=bad cluster")
