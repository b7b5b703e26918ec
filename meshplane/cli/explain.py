"""`meshplane explain`: ask the control plane which route a request would take, and why."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from meshplane.cli.api_client import DEFAULT_API_URL, ApiClient
from meshplane.cli.output import ApiToken, ApiUrl, CaFile, fail, reporting, table

__all__ = ["explain"]


def explain(
    host: Annotated[
        str,
        typer.Option(help="The Host header of the request (the SNI at a tls gateway)."),
    ],
    gateway: Annotated[str | None, typer.Option(help="The gateway that receives it.")] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", help="Or: the service whose sidecar sends it."),
    ] = None,
    path: Annotated[str, typer.Option(help="Path, with any query string.")] = "/",
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    header: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE request header (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("-o", "--output", help="text (default) or json.")] = "text",
    api_url: ApiUrl = DEFAULT_API_URL,
    ca_file: CaFile = None,
    token: ApiToken = None,
) -> None:
    """Explain which route a gateway (--gateway) or a service's sidecar (--from) uses for a
    request, why its other routes are not used, and where the request goes with which policies.
    For connections: at a tls gateway --host is the SNI; --from SVC --host TCP_SERVICE asks
    about a connection to that tcp service's mesh port; a tcp gateway ignores --host.
    """
    if (gateway is None) == (source is None):
        fail("give --gateway NAME or --from SERVICE")
    if output not in ("text", "json"):
        fail("--output must be text or json")
    headers: dict[str, str] = {}
    for item in header or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--header {item!r} is not NAME=VALUE")
        headers[name] = value
    ask: dict[str, Any] = {
        "host": host,
        "path": path,
        "method": method.upper(),
        "headers": headers,
        **({"gateway": gateway} if gateway else {"source": source}),
    }
    with ApiClient(api_url, ca_file=ca_file, token=token) as client, reporting():
        answer = client.explain(ask)
    if output == "json":
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(render(answer))


def render(answer: dict[str, Any]) -> str:
    """The explanation as text: the verdict, the candidates table, then where it goes."""
    lines = [f"{_asked(answer)}:", f"  {answer['summary']}"]
    if answer["candidates"]:
        rows = [
            [c["route"], "chosen" if c["chosen"] else "no", "; ".join(c["reasons"])]
            for c in answer["candidates"]
        ]
        lines += ["", table(["ROUTE", "USED", "WHY NOT"], rows)]
    if answer["destinations"]:
        lines += ["", "destinations:"]
        for d in answer["destinations"]:
            endpoints = ", ".join(e["address"] for e in d["endpoints"]) or "no endpoints"
            lines.append(
                f"  {d['percent']:g}% {d['cluster']} ({d['policies']['lb_policy']}): {endpoints}"
            )
    policies = _compact(answer.get("policies") or {})
    if policies:
        lines += ["", "policies:"]
        lines += [f"  {key}: {json.dumps(value)}" for key, value in policies.items()]
    return "\n".join(lines)


def _asked(answer: dict[str, Any]) -> str:
    """Which proxy, and what it matched on: the Host (its virtual host), the SNI (the name that
    took it), or nothing for a TCP connection."""
    proxy, host, picked = answer["proxy"], answer["host"], answer["virtual_host"]
    protocol = answer.get("protocol", "http")
    if protocol == "tcp":
        return str(proxy)
    what, how = ("SNI", "SNI name") if protocol == "tls" else ("host", "virtual host")
    return f"{proxy}, {what} {host!r}" + (f" ({how} {picked!r})" if picked else "")


def _compact(value: Any) -> Any:
    """Drop unset (null or empty) fields, at every depth, so only what is in effect shows."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_compact(item) for item in value]
    return value
