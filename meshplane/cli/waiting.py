"""`--wait` of `meshplane apply` and `rollback`: follow a change until every connected proxy
holds it, and stop at the first one that refuses it (a NACK), showing Envoy's reason; with
`--rollback-on-nack`, roll the change back by itself.

A proxy holds revision R when everything the control plane sent it up to R was ACKed (GET
/api/v1/proxies, `revision`); a change that does not reach a proxy's configuration moves it to
R without a push. Every replica's proxies are listed (another replica's as it last wrote them,
a couple of seconds old).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import ApiClient
from meshplane.cli.output import fail

__all__ = [
    "RollbackOnNack",
    "ValidateWithEnvoy",
    "Wait",
    "WaitTimeout",
    "nacks_now",
    "wait_until_held",
]

_POLL_S = 0.2

Wait = Annotated[
    bool,
    typer.Option("--wait", help="Return once every connected proxy holds the change."),
]
RollbackOnNack = Annotated[
    bool,
    typer.Option(
        "--rollback-on-nack",
        help="Wait, and if a proxy refuses the change (NACK), roll it back (implies --wait).",
    ),
]
ValidateWithEnvoy = Annotated[
    bool,
    typer.Option(
        "--validate-envoy",
        help="Before anything is stored, have Envoy (envoy --mode validate, on the control "
        "plane) check what every affected proxy group would be sent.",
    ),
]
WaitTimeout = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds --wait waits at most.")
]


def nacks_now(client: ApiClient) -> frozenset[tuple[str, ...]]:
    """The NACKs the proxies report before a change: `wait_until_held` ignores them (a proxy
    stuck on an earlier refusal did not refuse this change)."""
    return frozenset(_nack_keys(client.proxies()))


def wait_until_held(
    client: ApiClient,
    revision: int,
    *,
    timeout: float,
    rollback_on_nack: bool,
    earlier: frozenset[tuple[str, ...]] = frozenset(),
) -> None:
    """Return once every connected proxy holds `revision`; exit 1 on a NACK not among
    `earlier` (after rolling back, if asked) or at `timeout` seconds."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        proxies = client.proxies()
        behind = [p for p in proxies if (p.get("revision") or 0) < revision]
        progress = f"{len(proxies) - len(behind)}/{len(proxies)} proxies hold revision {revision}"
        if progress != shown:
            typer.echo(progress, err=True)
            shown = progress
        if not behind:
            return
        if refusals := [line for p in behind for line in _refusals(p, earlier)]:
            for line in refusals:
                typer.echo(line, err=True)
            _refused(client, revision, rollback_on_nack)
        if time.monotonic() >= deadline:
            names = ", ".join(p["node_id"] for p in behind[:5])
            fail(f"not every proxy holds revision {revision} after {timeout:g}s: {names}")
        time.sleep(_POLL_S)


def _refusals(proxy: dict[str, Any], earlier: frozenset[tuple[str, ...]]) -> Sequence[str]:
    """A line per resource type whose latest push the proxy refused, since `earlier`."""
    return [
        f"NACK {proxy['node_id']} {t['type']}: {t['last_nack']['error']}"
        for t, key in zip(proxy["types"], _type_keys(proxy), strict=True)
        if t.get("last_nack")
        and t["last_nack"]["version"] == t["sent_version"]
        and t["sent_version"] != t["acked_version"]
        and key not in earlier
    ]


def _nack_keys(proxies: Sequence[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [key for proxy in proxies for key in _type_keys(proxy)]


def _type_keys(proxy: dict[str, Any]) -> list[tuple[str, ...]]:
    """Per type of `proxy`, what names its last NACK (empty strings: none)."""
    keys: list[tuple[str, ...]] = []
    stream = str(proxy.get("stream_id"))
    for t in proxy["types"]:
        nack = t.get("last_nack") or {}
        keys.append(
            (proxy["node_id"], stream, t["type"], nack.get("version", ""), nack.get("at", ""))
        )
    return keys


def _refused(client: ApiClient, revision: int, rollback_on_nack: bool) -> None:
    if not rollback_on_nack:
        fail(f"revision {revision} was refused by a proxy; `meshplane rollback {revision - 1}`")
    now = client.server()["revision"]
    if now != revision:
        fail(
            f"revision {revision} was refused by a proxy, and the mesh has moved on to "
            f"{now}: not rolled back (see `meshplane history`)"
        )
    answer = client.rollback(revision - 1, message=f"revision {revision} was NACKed")
    fail(f"revision {revision} was refused by a proxy: rolled back (revision {answer['revision']})")
