"""Hypothesis strategies for the raw JSON of every kind's spec, as a user (or a fuzzer) writes it.

They draw the fields the model normalises (durations in every unit, hosts and header names in
mixed case, IPv6 addresses in long form, fractional percentages) in the forms a user may write
them, so a test can check that whatever is accepted is stored in a form that reads back. Values
are mostly valid; what the model refuses is filtered out by the test, not here.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from meshplane.model import KINDS, NAME_PATTERN
from meshplane.model.durations import MAX_DURATION_SECONDS
from tests.support.certificates import make_ca, make_server_certificate

__all__ = ["DURATION_TEXT", "SPECS"]

Json = dict[str, Any]

_MAX_MILLIS = MAX_DURATION_SECONDS * 1000


def _duration_forms(millis: int) -> st.SearchStrategy[object]:
    """Every way a user may write `millis` milliseconds."""
    seconds = f"{millis // 1000}.{millis % 1000:03d}"
    forms: list[object] = [f"{millis}ms", f"{seconds}s", seconds, millis / 1000]
    if millis % 60_000 == 0:
        forms.append(f"{millis // 60_000}m")
    if millis % 3_600_000 == 0:
        forms.append(f"{millis // 3_600_000}h")
    if millis % 1000 == 0:
        forms.append(millis // 1000)
    return st.sampled_from(forms)


def _durations(low: int = 1, high: int = _MAX_MILLIS) -> st.SearchStrategy[object]:
    millis = st.one_of(
        st.integers(low, high),
        st.sampled_from([m for m in (1, 25, 999, 1000, 1500, 60_000, 3_600_000) if low <= m]),
        st.just(high),
    )
    return millis.flatmap(_duration_forms)


# Duration text in every unit and grain the parser accepts, for tests of the parser itself.
DURATION_TEXT = _durations(0)

_names = st.from_regex(NAME_PATTERN, fullmatch=True)
_label_keys = st.from_regex(r"\A[A-Za-z0-9]([A-Za-z0-9_./-]{0,8}[A-Za-z0-9])?\Z")
_label_values = st.from_regex(r"\A[A-Za-z0-9_.-]{0,10}\Z")
_labels = st.dictionaries(_label_keys, _label_values, max_size=3)
_hosts = st.one_of(
    st.just("*"),
    st.from_regex(r"\A(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,6}[A-Za-z0-9])?(\.[A-Za-z]{2,4})?\Z"),
)
_header_names = st.from_regex(r"\Ax-[A-Za-z0-9-]{1,12}\Z")
_header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
_paths = st.from_regex(r"\A/[A-Za-z0-9/_.-]{0,20}\Z")
_regexes = st.sampled_from(["^/api/.*", "[a-z]+", r"/v\d+/.*", "(a+)+$"])
_addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
_long_ipv6 = st.ip_addresses(v=6).map(lambda a: a.exploded.upper())
_percents = st.integers(0, 1_000_000).map(lambda n: n / 10_000)
_statuses = st.integers(200, 599)
_ports = st.integers(1, 65535)


def _maybe(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[Json]:
    """A dict holding any subset of `fields`."""
    return st.fixed_dictionaries({}, optional=fields)


_circuit_breaker = _maybe(
    max_connections=st.integers(1, 4_294_967_295),
    max_pending_requests=st.integers(0, 4_294_967_295),
    max_requests=st.integers(1, 10_000),
    max_retries=st.integers(0, 100),
)
_outlier = _maybe(
    consecutive_5xx=st.integers(1, 1_000_000),
    interval=_durations(),
    base_ejection_time=_durations(),
    max_ejection_percent=st.integers(0, 100),
)
_health_check = _maybe(
    path=_paths,
    interval=_durations(),
    timeout=_durations(),
    healthy_threshold=st.integers(1, 100),
    expected_statuses=st.lists(_statuses, max_size=3),
)
_rate_limit = st.fixed_dictionaries(
    {"requests": st.integers(1, 1_000_000_000)},
    optional={"per": _durations(50), "burst": st.integers(1, 1_000_000_000)},
)

_service = _maybe(
    protocol=st.sampled_from(["http", "http2", "grpc"]),
    connect_timeout=_durations(),
    lb_policy=st.sampled_from(["round_robin", "least_request", "random", "ring_hash", "maglev"]),
    circuit_breaker=_circuit_breaker,
    outlier_detection=_outlier,
    health_check=_health_check,
    rate_limit=_rate_limit,
)
_endpoint = st.fixed_dictionaries(
    {"service": _names, "address": st.one_of(_addresses, _long_ipv6), "port": _ports},
    optional={
        "weight": st.integers(1, 65535),
        "labels": _labels,
        "zone": st.from_regex(r"\A[a-z0-9]{1,8}\Z"),
        "sidecar": st.booleans(),
    },
)
_gateway = st.fixed_dictionaries(
    {"port": _ports},
    optional={"address": _addresses, "hosts": st.lists(_hosts, min_size=1, max_size=3)},
)
_header_match = st.one_of(
    st.fixed_dictionaries({"name": _header_names, "exact": _header_values}),
    st.fixed_dictionaries({"name": _header_names, "regex": _regexes}),
    st.fixed_dictionaries({"name": _header_names, "present": st.booleans()}),
)
_match: st.SearchStrategy[Json] = st.one_of(
    st.fixed_dictionaries({}),
    st.fixed_dictionaries(
        {"prefix": _paths},
        optional={
            "headers": st.lists(_header_match, max_size=2),
            "methods": st.lists(st.sampled_from(["GET", "POST", "PUT"]), max_size=2, unique=True),
            "query": st.lists(
                st.fixed_dictionaries(
                    {"name": st.from_regex(r"\A[a-z]{1,5}\Z"), "present": st.just(True)}
                ),
                max_size=2,
            ),
        },
    ),
    st.fixed_dictionaries({"regex": _regexes}),
)
_backoff = st.integers(1, 1000).flatmap(
    lambda base: st.fixed_dictionaries(
        {"base_interval": _duration_forms(base)},
        optional={"max_interval": _durations(base, base * 10)},
    )
)
_retries = _maybe(
    attempts=st.integers(1, 10),
    per_try_timeout=_durations(1, 1000),
    retry_on=st.lists(st.sampled_from(["5xx", "reset", "connect-failure"]), min_size=1, max_size=2),
    retriable_status_codes=st.lists(_statuses, max_size=2),
    backoff=_backoff,
)
_header_changes = _maybe(
    set=st.dictionaries(_header_names, _header_values, max_size=2),
    remove=st.lists(st.from_regex(r"\Ay-[a-z]{1,5}\Z"), max_size=2, unique=True),
)
_fault = st.one_of(
    st.fixed_dictionaries(
        {"delay": st.fixed_dictionaries({"duration": _durations(), "percent": _percents})}
    ),
    st.fixed_dictionaries(
        {"abort": st.fixed_dictionaries({"status": _statuses, "percent": _percents})}
    ),
)
_sticky = st.one_of(
    st.fixed_dictionaries({"header": _header_names}),
    st.fixed_dictionaries(
        {
            "cookie": st.fixed_dictionaries(
                {"name": st.just("session")}, optional={"ttl": _durations(0)}
            )
        }
    ),
)
_destination = st.fixed_dictionaries(
    {"service": _names}, optional={"weight": st.integers(1, 10000), "labels": _labels}
)
_forwarding_route = st.fixed_dictionaries(
    {
        "hosts": st.lists(_hosts, min_size=1, max_size=2),
        "destinations": st.lists(_destination, min_size=1, max_size=3),
    },
    optional={
        "gateways": st.lists(_names, max_size=2),
        "match": _match,
        "timeout": _durations(1000),
        "retries": _retries,
        "sticky": _sticky,
        "rewrite": st.fixed_dictionaries({"host": st.from_regex(r"\A[A-Za-z]{1,8}\.com\Z")}),
        "request_headers": _header_changes,
        "response_headers": _header_changes,
        "mirrors": st.lists(
            st.fixed_dictionaries({"service": _names}, optional={"percent": _percents}), max_size=2
        ),
        "fault": _fault,
        "rate_limit": _rate_limit,
    },
)
_answering_route = st.fixed_dictionaries(
    {
        "gateways": st.lists(_names, min_size=1, max_size=2),
        "direct_response": st.fixed_dictionaries(
            {"status": _statuses}, optional={"body": _header_values}
        ),
    },
    optional={"fault": _fault, "rate_limit": _rate_limit},
)
_policy = st.fixed_dictionaries(
    {"target": _names},
    optional={
        "action": st.sampled_from(["allow", "deny"]),
        "callers": st.lists(
            st.one_of(
                st.fixed_dictionaries({"service": _names}),
                st.fixed_dictionaries({"gateway": _names}),
            ),
            max_size=3,
        ),
        "paths": st.lists(_paths, max_size=2),
        "methods": st.lists(st.sampled_from(["GET", "POST"]), max_size=2, unique=True),
    },
)
_mesh = _maybe(
    mtls=st.sampled_from(["strict", "permissive"]),
    telemetry=_maybe(
        access_log=_maybe(enabled=st.booleans(), path=_paths),
        prometheus_port=_ports,
        tracing=st.fixed_dictionaries(
            {"collector": st.just("jaeger:9411")}, optional={"sampling": _percents}
        ),
        services=st.dictionaries(
            _names, _maybe(sampling=_percents, access_log=st.booleans()), max_size=2
        ),
    ),
)

_EDGE_CA = make_ca("edge test ca")
_EDGE = [make_server_certificate(_EDGE_CA, [name]) for name in ("a.example.com", "b.example.com")]
_mesh_issued = st.fixed_dictionaries(
    {"issuer": st.just("mesh"), "hostnames": st.lists(_hosts, min_size=1, max_size=3)}
)
_given_certificate = st.sampled_from(_EDGE).flatmap(
    lambda made: st.fixed_dictionaries(
        {"certificate": st.just(made.cert_pem)},
        optional={"private_key": st.just(made.key_pem)},
    )
)
_https_gateway = st.fixed_dictionaries(
    {
        "port": _ports,
        "protocol": st.just("https"),
        "tls": st.fixed_dictionaries(
            {"certificates": st.lists(_names, min_size=1, max_size=2)},
            optional={"min_version": st.sampled_from(["1.2", "1.3"])},
        ),
    },
    optional={"hosts": st.lists(_hosts, min_size=1, max_size=3)},
)
_stream_gateway = st.one_of(
    st.fixed_dictionaries({"port": _ports, "protocol": st.just("tcp")}),
    st.fixed_dictionaries(
        {"port": _ports, "protocol": st.just("tls")},
        optional={"hosts": st.lists(_hosts, min_size=1, max_size=3)},
    ),
)
_redirect_gateway: st.SearchStrategy[Json] = st.fixed_dictionaries(
    {"port": _ports, "https_redirect": st.one_of(st.just(True), st.builds(dict, port=_ports))}
)

# Raw spec JSON by kind plural; one entry for every kind there is.
SPECS: dict[str, st.SearchStrategy[Json]] = {
    "services": _service,
    "endpoints": _endpoint,
    "tls-certificates": st.one_of(_given_certificate, _mesh_issued),
    "gateways": st.one_of(_gateway, _https_gateway, _redirect_gateway, _stream_gateway),
    "routes": st.one_of(_forwarding_route, _answering_route),
    "authorization-policies": _policy,
    "meshes": _mesh,
}
assert set(SPECS) == set(KINDS), "a kind without a strategy would go untested"
