"""KINDS is in dependency order: a batch written in that order meets every reference it makes
to its own documents already written (`Store.apply` relies on it)."""

from __future__ import annotations

from meshplane.model import KINDS
from tests.support.certificates import make_ca, make_server_certificate

_EDGE = make_server_certificate(make_ca(), ["a.example.com"])

# One spec per kind that refers to everything that kind can refer to.
_REFERRING = {
    "services": {},
    "endpoints": {"service": "s", "address": "10.0.0.1", "port": 80},
    "tls-certificates": {"certificate": _EDGE.cert_pem, "private_key": _EDGE.key_pem},
    "gateways": {"port": 8000, "protocol": "https", "tls": {"certificates": ["c"]}},
    "routes": {
        "gateways": ["g"],
        "destinations": [{"service": "s"}],
        "mirrors": [{"service": "m", "percent": 10}],
    },
    "authorization-policies": {"target": "s", "callers": [{"service": "c"}, {"gateway": "g"}]},
    "meshes": {},
}


def test_every_kind_refers_only_to_kinds_before_it() -> None:
    assert set(_REFERRING) == set(KINDS)
    order = list(KINDS)
    for plural, kind in KINDS.items():
        referred = {ref.kind for ref in kind.references(kind.parse(_REFERRING[plural]))}
        assert all(order.index(k) < order.index(plural) for k in referred), (plural, referred)
        if plural in ("endpoints", "gateways", "routes", "authorization-policies"):
            assert referred  # the sample does refer: the check above checks something
