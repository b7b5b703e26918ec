"""Fuzz the REST API with schemathesis: a realistic mesh to aim at, and a bounded, repeatable run.

The run draws cases from the OpenAPI document the app serves, valid ones and invalid ones, sends
each through `send` and checks the answer against the same document: no server error, only
documented status codes, content types and bodies, invalid data refused. Every failure is
collected (none stops the run), so one run lists every class of defect at once.

Hypothesis is derandomized and never shrinks or replays from a database: the same code fuzzes
the same cases in CI and on a laptop, and a failure is reported as found, not minimised. For a
deeper look, MESHPLANE_FUZZ_EXAMPLES=2000 MESHPLANE_FUZZ_SEED=N draws more, and other, cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation as GenericOperation

Operation = GenericOperation[Any, Any, Any, Any]
__all__ = ["SEED", "AnyCase", "Failure", "fuzz", "operations", "summary"]

AnyCase = Case[Any]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

# A small mesh as users write it: the demo's shop (frontend -> orders v1/v2 -> payments behind
# gateway edge), with the protections, matches and policies that make its specs non-trivial.
SEED: list[tuple[str, str, dict[str, Any]]] = [
    ("meshes", "default", {"mtls": "strict", "telemetry": {"prometheus_port": 9102}}),
    ("services", "frontend", {"protocol": "http"}),
    (
        "services",
        "orders",
        {
            "protocol": "http",
            "connect_timeout": "250ms",
            "lb_policy": "least_request",
            "circuit_breaker": {"max_connections": 100, "max_requests": 200},
            "outlier_detection": {"interval": "5s", "base_ejection_time": "30s"},
            "health_check": {"path": "/healthz", "interval": "5s", "timeout": "1s"},
        },
    ),
    ("services", "payments", {"protocol": "grpc"}),
    ("endpoints", "frontend-1", {"service": "frontend", "address": "10.0.0.10", "port": 8080}),
    (
        "endpoints",
        "orders-v1",
        {"service": "orders", "address": "10.0.0.21", "port": 8080, "labels": {"version": "v1"}},
    ),
    (
        "endpoints",
        "orders-v2",
        {
            "service": "orders",
            "address": "10.0.0.22",
            "port": 8080,
            "weight": 2,
            "labels": {"version": "v2"},
            "zone": "eu-west-1a",
        },
    ),
    ("endpoints", "payments-1", {"service": "payments", "address": "10.0.0.31", "port": 9090}),
    ("gateways", "edge", {"port": 8000, "hosts": ["shop.example.com", "*"]}),
    (
        "routes",
        "shop",
        {
            "gateways": ["edge"],
            "match": {"prefix": "/", "methods": ["GET", "POST"]},
            "destinations": [{"service": "frontend"}],
            "timeout": "5s",
            "retries": {"attempts": 3, "retry_on": ["5xx"]},
        },
    ),
    (
        "routes",
        "orders-canary",
        {
            "hosts": ["orders"],
            "match": {
                "prefix": "/orders",
                "headers": [{"name": "x-canary", "exact": "1"}],
                "query": [{"name": "debug", "present": True}],
            },
            "destinations": [
                {"service": "orders", "labels": {"version": "v1"}, "weight": 90},
                {"service": "orders", "labels": {"version": "v2"}, "weight": 10},
            ],
            "request_headers": {"set": {"x-route": "canary"}},
            "rate_limit": {"requests": 100, "per": "1s"},
        },
    ),
    (
        "authorization-policies",
        "payments-from-orders",
        {"target": "payments", "callers": [{"service": "orders"}], "methods": ["POST"]},
    ),
    (
        "authorization-policies",
        "orders-no-admin",
        {
            "target": "orders",
            "action": "deny",
            "callers": [{"gateway": "edge"}],
            "paths": ["/admin"],
        },
    ),
]


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed check: where, what was sent, what came back and why it is wrong."""

    operation: str
    check: str
    status: int | None
    request: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.operation} -> {self.status} [{self.check}]: {self.reason}\n    {self.request}"
        )


Send = Callable[[AnyCase], httpx.Response]


def operations(schema: schemathesis.BaseSchema) -> Iterator[Operation]:
    """Every operation of `schema`; a document schemathesis cannot read fails here."""
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


def _cases(operation: Operation, names: dict[str, list[str]]) -> st.SearchStrategy[AnyCase]:
    """Valid cases, invalid cases, and valid cases aimed at names that exist, in equal shares."""
    strategies = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    for parameter, known in names.items():
        if "{" + parameter + "}" in operation.path:
            strategies.append(st.sampled_from(known).flatmap(_aimed(operation, parameter)))
    return st.one_of(strategies)


def _aimed(operation: Operation, parameter: str) -> Callable[[str], st.SearchStrategy[AnyCase]]:
    def cases(value: str) -> st.SearchStrategy[AnyCase]:
        return operation.as_strategy(path_parameters={parameter: value})

    return cases


def _describe(case: AnyCase) -> str:
    body = "" if case.body is None or not hasattr(case, "body") else f" body={case.body!r}"
    text = (
        f"{case.method} {case.formatted_path} query={case.query!r} headers={case.headers!r}{body}"
    )
    return text if len(text) <= 600 else text[:600] + "..."


def fuzz(
    operation: Operation,
    send: Send,
    *,
    names: dict[str, list[str]],
    max_examples: int,
    seed: int | None = None,
) -> list[Failure]:
    """Send up to `max_examples` cases to `operation` and check each answer; return the failures.

    Without `seed` the cases are the same on every run; a seed draws others (for a deeper look).
    """
    found: list[Failure] = []

    @settings(
        max_examples=max_examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=_cases(operation, names))
    def run(case: AnyCase) -> None:
        try:
            response = send(case)
        except Exception as exc:  # the app raised: a server error the client would see as 500
            found.append(
                Failure(operation.label, "not_a_server_error", None, _describe(case), repr(exc))
            )
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except schemathesis.errors.FailureGroup as group:
            for failure in group.exceptions:
                found.append(
                    Failure(
                        operation.label,
                        type(failure).__name__,
                        response.status_code,
                        _describe(case),
                        f"{failure.title}: {failure.message[:300]} | body={response.text[:200]}",
                    )
                )

    (run if seed is None else hypothesis.seed(seed)(run))()
    return found


def summary(failures: list[Failure]) -> str:
    """One paragraph per kind of failure (operation, check, status), with its first example."""
    kinds: dict[tuple[str, str, int | None], list[Failure]] = {}
    for failure in failures:
        kinds.setdefault((failure.operation, failure.check, failure.status), []).append(failure)
    return f"{len(failures)} failures of {len(kinds)} kinds:\n" + "\n".join(
        f"{len(found)}x {found[0]}" for found in kinds.values()
    )
