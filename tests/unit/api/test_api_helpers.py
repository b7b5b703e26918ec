import pytest

from meshplane.api.deps import parse_if_match
from meshplane.api.errors import field_loc


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ('"7"', 7), ("7", 7), (" 12 ", 12), ("*", "*"), ('"0"', 0)],
)
def test_if_match_forms(header, expected):
    assert parse_if_match(header) == expected


@pytest.mark.parametrize("header", ['W/"7"', "", '"7', "seven", '"-1"', '"1", "2"'])
def test_unreadable_if_match(header):
    with pytest.raises(ValueError, match="If-Match"):
        parse_if_match(header)


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        (None, []),
        ("service", ["service"]),
        ("gateways[0]", ["gateways", 0]),
        ("destinations[12].service", ["destinations", 12, "service"]),
        ("match.headers[1].name", ["match", "headers", 1, "name"]),
    ],
)
def test_field_paths_become_locs(field, loc):
    assert field_loc(field) == loc
