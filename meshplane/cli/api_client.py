"""A small synchronous client for meshplane's REST API, shared by the CLI's commands.

Every failure surfaces as `ApiError`: HTTP errors carry the server's status and its message
(for validation errors, each field path with its message), and transport failures (server down,
timeout) have status 0. httpx's own exceptions never leave this module.
"""

from __future__ import annotations

import builtins
import os
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from meshplane.model import NODE_TOKEN_HEADER, NodeOptions, kind_named

__all__ = [
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiError",
    "Bootstrap",
    "default_token",
    "describe",
    "format_loc",
    "verifying",
]

DEFAULT_API_URL = "http://127.0.0.1:8080"
_PREFIX = "/api/v1"
# How long `apply` waits for its answer: a whole mesh is one transaction (30,000 documents take
# seconds to tens of seconds, by machine and database), far beyond one resource's write.
APPLY_TIMEOUT_S = 600.0
# Where a FastAPI error location points; the first part only says which part of the request.
_REQUEST_PARTS = ("body", "query", "path", "header")


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """A bootstrap as the API answered it, and the name of the node token it carries."""

    text: str
    token_name: str


class ApiError(Exception):
    """The API refused a request (`status` is its HTTP status) or could not be reached (0).
    `detail` is the answer's detail: a message, or a 422's list of errors. `unanswered`: the
    request was sent but no answer came in time, so it may have taken effect."""

    def __init__(
        self, status: int, message: str, detail: Any = None, *, unanswered: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.unanswered = unanswered


def format_loc(loc: Sequence[str | int]) -> str:
    """Render an error location as a field path: ("spec", "routes", 0) -> "spec.routes[0]"."""
    parts = list(loc)
    if parts and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def describe(errors: Iterable[object]) -> str:
    """One line for a list of validation errors (the API's 422 detail, or pydantic's own):
    each field path with its message."""
    lines = []
    for error in errors:
        if not isinstance(error, Mapping):
            lines.append(str(error))
            continue
        where = format_loc(error.get("loc", ()))
        lines.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(lines)


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _message(response: httpx.Response) -> str:
    detail = _detail(response)
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return describe(detail)
    return f"{response.status_code} {response.reason_phrase}: {response.text[:200]}"


def verifying(ca_file: Path) -> ssl.SSLContext:
    """A client context that trusts `ca_file`'s roots; raises OSError (ssl.SSLError is one) for
    a file that is not readable PEM."""
    return ssl.create_default_context(cafile=str(ca_file))


def default_token() -> str | None:
    """The token a client uses when given none: MESHPLANE_TOKEN, MESHPLANE_ADMIN_TOKEN, else
    the admin token file a local server wrote at its first start (where `Settings` says)."""
    from meshplane.settings import Settings  # the server's rule for where the file is

    for name in ("MESHPLANE_TOKEN", "MESHPLANE_ADMIN_TOKEN"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return Settings().admin_token_path.read_text().strip() or None
    except (OSError, ValueError):
        return None


def _plural(kind: str) -> str:
    try:
        return kind_named(kind).plural
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


class ApiClient:
    """Talks to one meshplane server.

    Kinds may be named singular or plural, any case; an unknown kind raises ValueError before
    any request is sent. Over https the server's certificate is verified against `ca_file` (PEM
    roots, e.g. the mesh roots a server with --api-tls writes) when given, else httpx's usual
    public roots.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        token: str | None = None,
    ) -> None:
        token = token if token is not None else default_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + _PREFIX,
            transport=transport,
            timeout=timeout,
            verify=True if ca_file is None else verifying(ca_file),
            headers=headers,
        )
        self.base_url = base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int | bool | builtins.list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        timeout = self._http.timeout
        if read_timeout is not None:
            timeout = httpx.Timeout(timeout.connect, read=read_timeout, write=timeout.write)
        try:
            response = self._http.request(
                method, path, json=json, params=params, headers=headers, timeout=timeout
            )
        except httpx.ReadTimeout as exc:
            waited = timeout.read
            message = f"meshplane at {self.base_url} did not answer within {waited:g}s; "
            message += "the request was sent and may still take effect"
            raise ApiError(0, message, unanswered=True) from exc
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach meshplane at {self.base_url}: {exc}") from exc
        if response.is_error:
            raise ApiError(response.status_code, _message(response), _detail(response))
        return response

    def _object(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        """The JSON object the API answers `method path` with (`request`: json=, params=)."""
        answer: dict[str, Any] = self._request(method, path, **request).json()
        return answer

    def _items(self, method: str, path: str, **request: Any) -> builtins.list[dict[str, Any]]:
        """The `items` of the list the API answers `method path` with."""
        items: builtins.list[dict[str, Any]] = self._object(method, path, **request)["items"]
        return items

    def server(self) -> dict[str, Any]:
        """Version, current revision, the advertised xDS address, and the stored resources
        whose spec no longer validates."""
        return self._object("GET", "/server")

    def list(self, kind: str) -> builtins.list[dict[str, Any]]:
        """Every resource of `kind` whose stored spec validates, ordered by name."""
        items: builtins.list[dict[str, Any]] = self.listing(kind)["items"]
        return items

    def listing(self, kind: str) -> dict[str, Any]:
        """The list of `kind`: `items`, and `invalid` (stored specs that no longer validate:
        name, version, reason) when there are any."""
        return self._object("GET", f"/{_plural(kind)}")

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self._object("GET", f"/{_plural(kind)}/{name}")

    def put(
        self, kind: str, name: str, spec: Mapping[str, Any], *, if_match: int | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Create or replace a resource; return it and whether it was created."""
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        response = self._request(
            "PUT", f"/{_plural(kind)}/{name}", json={"spec": dict(spec)}, headers=headers
        )
        resource: dict[str, Any] = response.json()
        return resource, response.status_code == httpx.codes.CREATED

    def delete(self, kind: str, name: str, *, if_match: int | None = None) -> None:
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else None
        self._request("DELETE", f"/{_plural(kind)}/{name}", headers=headers)

    def proxies(self) -> builtins.list[dict[str, Any]]:
        """Every connected xDS stream with its per-type sent/ACKed versions and last NACK."""
        return self._items("GET", "/proxies")

    def proxy_config(self, node_id: str) -> dict[str, Any]:
        return self._object("GET", f"/proxies/{node_id}/config")

    def explain(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Which route a gateway or sidecar uses for `request` (see POST /explain), and why."""
        return self._object("POST", "/explain", json=dict(request))

    def bootstrap(
        self,
        options: NodeOptions,
        *,
        format: Literal["yaml", "json"] = "yaml",
        token_ttl_seconds: float | None = None,
    ) -> Bootstrap:
        """The Envoy bootstrap; options left unset take the server's defaults. Each call issues
        a new node token (for `token_ttl_seconds`, or the server's default)."""
        params: dict[str, Any] = {**options.query(), "format": format}
        if token_ttl_seconds is not None:
            params["token_ttl_seconds"] = token_ttl_seconds
        response = self._request("GET", "/bootstrap", params=params)
        return Bootstrap(response.text, response.headers.get(NODE_TOKEN_HEADER, ""))

    def certificates(self) -> builtins.list[dict[str, Any]]:
        """Every identity's certificate: serial, issuer, validity, next renewal (never keys)."""
        return self._items("GET", "/certificates")

    def rotate_certificates(
        self, *, service: str | None = None, gateway: str | None = None, all: bool = False
    ) -> builtins.list[dict[str, Any]]:
        body = {"service": service, "gateway": gateway, "all": all}
        return self._items("POST", "/certificates/rotate", json=body)

    def ca(self) -> dict[str, Any]:
        return self._object("GET", "/ca")

    def rotate_ca(
        self,
        *,
        overlap_seconds: float | None = None,
        certificate: str | None = None,
        private_key: str | None = None,
        chain: str = "",
    ) -> dict[str, Any]:
        body = {
            "overlap_seconds": overlap_seconds,
            "certificate": certificate,
            "private_key": private_key,
            "chain": chain,
        }
        return self._object("POST", "/ca/rotate", json=body)

    def finish_ca_rotation(self) -> dict[str, Any]:
        return self._object("POST", "/ca/finish")

    def abort_ca_rotation(self) -> dict[str, Any]:
        """Go back to the root that issued before the rotation (see POST /ca/abort)."""
        return self._object("POST", "/ca/abort")

    def apply(
        self,
        documents: Sequence[Mapping[str, Any]],
        *,
        message: str | None = None,
        prune: Sequence[str] = (),
        dry_run: bool = False,
        validate_envoy: bool = False,
    ) -> dict[str, Any]:
        """Write `documents` ({kind, name, spec[, version]}) in one transaction, deleting what
        operators wrote of the `prune` kinds that they do not name: the revision and, per
        document then per deletion, its outcome and version (and with `dry_run`, which writes
        nothing, each changed spec before and after; `validate_envoy` has Envoy check what
        the proxies would be sent first)."""
        body = {"documents": list(documents), "prune": list(prune), "message": message}
        params = _batch_params(dry_run, validate_envoy)
        return self._object(
            "POST", "/apply", json=body, params=params, read_timeout=APPLY_TIMEOUT_S
        )

    def changes(self, **filters: str | int) -> dict[str, Any]:
        """A page of the history, newest first (filters: kind, name, by, before, since,
        until, limit)."""
        return self._object("GET", "/changes", params=filters)

    def revision(
        self, revision: int, *, kind: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """The resources (of `kind`, named `name`) as they were at `revision`."""
        params = {k: v for k, v in (("kind", kind), ("name", name)) if v is not None}
        return self._object("GET", f"/revisions/{revision}", params=params)

    def diff(self, older: int | None = None, newer: int | None = None) -> dict[str, Any]:
        """What differs between two revisions (default: what the last change did)."""
        params = {k: v for k, v in (("from", older), ("to", newer)) if v is not None}
        return self._object("GET", "/diff", params=params)

    def rollback(
        self,
        revision: int,
        *,
        cascade: bool = False,
        message: str | None = None,
        dry_run: bool = False,
        validate_envoy: bool = False,
    ) -> dict[str, Any]:
        """Make the mesh what it was at `revision`, as a new revision (see POST /rollback)."""
        body = {"revision": revision, "cascade": cascade, "message": message}
        params = _batch_params(dry_run, validate_envoy)
        return self._object(
            "POST", "/rollback", json=body, params=params, read_timeout=APPLY_TIMEOUT_S
        )

    def create_token(
        self,
        name: str,
        role: str,
        *,
        scope: Sequence[str] = (),
        ttl_seconds: float | None = None,
    ) -> dict[str, Any]:
        """A new API token; the answer's `token` is shown this once."""
        body = {"name": name, "role": role, "scope": list(scope), "ttl_seconds": ttl_seconds}
        return self._object("POST", "/tokens", json=body)

    def tokens(self, role: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every token, or those of `role`; never the tokens themselves."""
        return self._items("GET", "/tokens", params={"role": role} if role else None)

    def revoke_token(self, name: str) -> None:
        self._request("DELETE", f"/tokens/{name}")

    def revoke_node_tokens(self, identity: str) -> builtins.list[str]:
        """Revoke every node token of `identity` (service/orders); the names revoked."""
        revoked: builtins.list[str] = self._object(
            "DELETE", "/tokens", params={"identity": identity}
        )["revoked"]
        return revoked


def _batch_params(dry_run: bool, validate_envoy: bool) -> dict[str, str | int | bool] | None:
    given = {"dry_run": dry_run, "validate_envoy": validate_envoy}
    return {key: True for key, on in given.items() if on} or None
