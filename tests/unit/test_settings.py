"""Settings refuse values the control plane could not run with, naming the variable, instead of
letting `meshplane serve` die on them later (an OverflowError at start, a timer never firing)."""

import pytest
from pydantic import ValidationError

from meshplane.settings import Settings


@pytest.mark.parametrize(
    "field",
    ["ca_overlap_seconds", "leaf_ttl_seconds", "root_ttl_days", "endpoint_grace_seconds"],
)
def test_an_unusable_duration_is_refused_naming_it(field):
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({field: 1e300})
    assert caught.value.errors()[0]["loc"] == (field,)


def test_the_environment_is_checked_the_same_way(monkeypatch):
    monkeypatch.setenv("MESHPLANE_CA_OVERLAP_SECONDS", "1e300")
    with pytest.raises(ValidationError, match="ca_overlap_seconds"):
        Settings()
