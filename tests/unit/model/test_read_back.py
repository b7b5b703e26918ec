"""Whatever the model accepts is stored in a form it accepts again, as the same spec.

A value that is accepted but whose stored form the model then refuses makes every later read of
the mesh fail (a 201 that bricks the database: "0.0000001s" was stored as "1e-07s"). So for
every kind, generated specs go through the store's form and back, and values the model cannot
keep exactly are refused up front instead of being rounded.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from meshplane.model import KINDS, ServiceSpec, Spec, format_duration, parse_duration
from meshplane.store import canonical

from .spec_strategies import DURATION_TEXT, SPECS

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write_only(spec: Spec) -> list[str]:
    return [name for name, info in type(spec).model_fields.items() if info.exclude]


@pytest.mark.parametrize("plural", sorted(KINDS))
def test_every_accepted_spec_reads_back_from_its_stored_form(plural):
    kind = KINDS[plural]

    @_SETTINGS
    @given(SPECS[plural])
    def check(raw):
        try:
            spec = kind.parse(raw)
        except ValidationError:
            assume(False)
            return
        stored = json.loads(json.dumps(canonical(spec)))  # what the JSON column holds
        again = kind.parse(stored)
        # A write-only field (a certificate's private key) is never stored: all else reads back.
        assert again == spec.model_copy(update=dict.fromkeys(_write_only(spec)))
        assert canonical(again) == stored

    check()


@given(DURATION_TEXT)
@_SETTINGS
def test_a_duration_reads_back_from_its_text(value):
    seconds = parse_duration(value)
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(0, 365 * 24 * 3600 * 1000))
@_SETTINGS
def test_every_millisecond_count_has_one_text(millis):
    text = format_duration(millis / 1000)
    assert parse_duration(text) == millis / 1000
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    "value",
    ["0.0000001s", 0.0000001, "1.0005s", "0.5ms", "0.000001h", 1.0001],
)
def test_a_duration_finer_than_a_millisecond_is_refused_not_rounded(value):
    with pytest.raises(ValidationError, match="whole number of milliseconds") as caught:
        ServiceSpec.model_validate({"connect_timeout": value})
    assert caught.value.errors()[0]["loc"] == ("connect_timeout",)


@pytest.mark.parametrize(
    "value", ["8761h", "31536001s", 1e300, 10**40, float("inf"), float("nan"), "-1s", -1]
)
def test_a_duration_out_of_range_is_refused(value):
    with pytest.raises(ValidationError) as caught:
        ServiceSpec.model_validate({"connect_timeout": value})
    assert caught.value.errors()[0]["loc"] == ("connect_timeout",)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("250ms", "250ms"),
        ("1500ms", "1.5s"),
        ("1.25s", "1.25s"),
        ("2m", "120s"),
        ("1h", "3600s"),
        (0.001, "1ms"),
        (1.001, "1.001s"),
        ("8760h", "31536000s"),
    ],
)
def test_durations_are_stored_in_one_canonical_form(written, stored):
    spec = ServiceSpec.model_validate({"connect_timeout": written})
    assert canonical(spec)["connect_timeout"] == stored
