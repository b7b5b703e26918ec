"""Why a stored spec does not validate, said briefly; and who remembers which ones do not."""

from __future__ import annotations

import logging

import pytest

from meshplane.model import ServiceSpec
from meshplane.store.invalid import InvalidResource, InvalidResources, parse_stored


def test_a_valid_spec_parses() -> None:
    assert parse_stored("services", {"protocol": "grpc"}) == ServiceSpec(protocol="grpc")


@pytest.mark.parametrize(
    ("kind", "data", "reason"),
    [
        ("services", {"nope": 1}, "nope: Extra inputs are not permitted"),
        ("routes", {"destinations": [{"service": "a", "weight": -1}]}, "destinations[0].weight: "),
        ("services", "a string", "Input should be a valid dictionary"),
        ("services", None, "Input should be a valid dictionary"),
        ("widgets", {}, "unknown kind 'widgets'"),
    ],
)
def test_the_reason_names_the_field(kind: str, data: object, reason: str) -> None:
    result = parse_stored(kind, data)
    assert isinstance(result, str)
    assert result.startswith(reason), result


def test_the_reason_is_short_and_never_the_whole_input() -> None:
    huge = "x" * 10_000
    result = parse_stored("services", {f"f{i}": huge for i in range(50)})
    assert isinstance(result, str)
    assert huge[:300] not in result
    assert len(result) <= 200
    assert "(and 48 more)" in result


def test_a_sighting_older_than_the_fix_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="meshplane.store.invalid")
    known = InvalidResources()
    old = InvalidResource("services", "web", 5, "bad")
    known.found([old])
    known.found([old])
    assert known.all() == [old]
    known.cleared(("services", "web"), 7)
    known.found([old])  # a read that began before the fix at 7
    known.reloaded(6, [old])  # a full load from before it
    assert known.all() == []
    newer = InvalidResource("services", "web", 9, "bad again")
    known.found([newer])  # written invalid again after the fix (by another replica)
    assert known.all() == [newer]
    known.reloaded(8, [])  # a load from before 9 cannot clear it
    assert known.all() == [newer]
    known.reloaded(9, [])
    assert known.all() == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
