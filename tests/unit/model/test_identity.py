"""Subjects: one way to write an identity, read back, and its SPIFFE ID."""

import pytest

from meshplane.model import XDS_SERVER, Subject


def test_a_subject_reads_back_from_its_text():
    for subject in (Subject.service("orders"), Subject.gateway("edge"), XDS_SERVER):
        assert Subject.parse(subject.text) == subject
        assert str(subject) == subject.text


def test_the_spiffe_id_is_the_trust_domain_and_the_text():
    assert Subject.service("orders").spiffe_id("meshplane.local") == (
        "spiffe://meshplane.local/service/orders"
    )
    assert XDS_SERVER.text == "control-plane/xds"


@pytest.mark.parametrize("text", ["orders", "pod/orders", "service/", "service/Orders", "/x"])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="not"):
        Subject.parse(text)
