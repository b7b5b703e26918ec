"""The node contract: what a proxy is, declared once, and how its node metadata reads and writes.

`NodeOptions` is every option of one Envoy (its role, what it serves, its ports, zone, labels, how
it reaches xDS), each declared here once with its type, bounds, default and help text. The REST
API takes it as the query of GET /bootstrap, the CLI's `bootstrap` and `proxy` commands build
their flags from it, and the demo builds it directly. `xds/bootstrap.py` only renders it.

The `meshplane` struct in a bootstrap's node metadata is written by `node_metadata` and read back
by `proxy_from_node`, side by side, so what a bootstrap declares and what the xDS server reads
cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Self, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from meshplane.errors import excerpt
from meshplane.model.fields import IpAddress
from meshplane.model.identity import Subject
from meshplane.model.names import NAME_PATTERN
from meshplane.model.proxy import Proxy, ProxyGroup, Role
from meshplane.model.specs import ZONE_PATTERN, EndpointSpec

__all__ = [
    "DEFAULT_ADMIN_PORT",
    "METADATA_KEY",
    "NODE_TOKEN_HEADER",
    "NodeOptions",
    "node_metadata",
    "proxy_from_node",
]

# The node metadata struct a meshplane bootstrap carries.
METADATA_KEY = "meshplane"
NODE_TOKEN_HEADER = "Meshplane-Node-Token"
"""The header of a bootstrap answer naming the node token it carries (to revoke it later)."""
DEFAULT_ADMIN_PORT = 9901
_SIDECAR_PORTS = ("inbound_port", "app_port", "outbound_port")
_SIDECAR_ONLY = ("service", *_SIDECAR_PORTS, "address")
_NAME = re.compile(NAME_PATTERN)
_ZONE = re.compile(ZONE_PATTERN)
# The labels of an endpoint: what a sidecar's auto-registered endpoint will be checked against.
_ENDPOINT_LABELS = TypeAdapter[dict[str, str]](
    cast(Any, EndpointSpec.model_fields["labels"].annotation)
)


def _invalid(message: str) -> PydanticCustomError:
    """A refusal whose message is exactly `message` (no "Value error, " prefix)."""
    return PydanticCustomError("value_error", "{reason}", {"reason": message})


def _role(value: object) -> object:
    if value not in tuple(Role):
        raise _invalid(f"role must be 'gateway' or 'sidecar', not {excerpt(str(value))!r}")
    return value


def _port(value: int, info: ValidationInfo) -> int:
    if isinstance(value, bool) or not 1 <= value <= 65535:
        raise _invalid(f"{info.field_name} must be a port between 1 and 65535, not {value!r}")
    return value


def _name(value: str, info: ValidationInfo) -> str:
    if len(value) > 63 or not _NAME.match(value):
        raise _invalid(
            f"{info.field_name} {excerpt(value)!r} is not a meshplane name (lowercase DNS label)"
        )
    return value


def _zone(value: str) -> str:
    if not _ZONE.match(value):
        raise _invalid(f"zone {excerpt(value)!r} is not a zone name (like an endpoint's zone)")
    return value


def _node_id(value: str) -> str:
    if not value or value != value.strip() or len(value) > 256:
        raise _invalid("node_id must be 1 to 256 characters with no surrounding whitespace")
    return value


def _host(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise _invalid(f"xds_host {excerpt(value)!r} is not a host name or IP address")
    return value


def _labels(items: tuple[str, ...]) -> tuple[str, ...]:
    """Check KEY=VALUE labels as the sidecar's auto-registered endpoint will check them (a label
    accepted here but refused there would leave the sidecar unregistered); sort them."""
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError("is not KEY=VALUE")
            _ENDPOINT_LABELS.validate_python({key: value})
        except ValueError as exc:  # pydantic's ValidationError is one too
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise _invalid(f"{excerpt(item)!r}: {reason}") from None
    return tuple(sorted(items, key=lambda item: item.partition("=")[::2]))


def _tcp_ports(items: tuple[str, ...]) -> tuple[str, ...]:
    """Check SERVICE=PORT items (one per service); sort them."""
    seen: set[str] = set()
    for item in items:
        service, sep, port = item.partition("=")
        if not sep or not _NAME.match(service) or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise _invalid(f"{excerpt(item)!r}: not SERVICE=PORT (a service name, a port 1-65535)")
        if service in seen:
            raise _invalid(f"{excerpt(item)!r}: service {service!r} is given twice")
        seen.add(service)
    return tuple(sorted(items))


# Each type keeps its bounds in the JSON schema (the OpenAPI document of GET /bootstrap) and
# names the field in its own message.
_Port = Annotated[
    int, AfterValidator(_port), Field(json_schema_extra={"minimum": 1, "maximum": 65535})
]
_Name = Annotated[
    str, AfterValidator(_name), Field(json_schema_extra={"pattern": NAME_PATTERN, "maxLength": 63})
]


class NodeOptions(BaseModel):
    """Everything that describes one Envoy of the mesh; the fields are checked to fit together.

    A gateway needs `gateway`; a sidecar needs `service` and its three ports, and takes `address`
    and `labels`. `node_id`, `xds_host` and `xds_port` left out are the server's to fill in
    (`with_server_defaults`). Raises pydantic's ValidationError (a ValueError) naming each field
    that is wrong, or missing for the role.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    role: Annotated[Role, BeforeValidator(_role)] = Field(
        description="gateway: an edge Envoy; sidecar: one per instance."
    )
    gateway: _Name | None = Field(None, description="gateway: the gateway it serves.")
    service: _Name | None = Field(None, description="sidecar: the service it belongs to.")
    inbound_port: _Port | None = Field(None, description="sidecar: where peers reach it (mTLS).")
    app_port: _Port | None = Field(None, description="sidecar: where its app listens on 127.0.0.1.")
    outbound_port: _Port | None = Field(
        None, description="sidecar: where its app sends outgoing requests."
    )
    address: IpAddress | None = Field(
        None,
        description="sidecar: the IP peers reach it at (default: the address its xDS "
        "connection comes from).",
    )
    labels: Annotated[tuple[str, ...], AfterValidator(_labels)] = Field(
        (),
        alias="label",
        description="sidecar: KEY=VALUE label of its auto-registered endpoint (repeat).",
    )
    tcp_ports: Annotated[tuple[str, ...], AfterValidator(_tcp_ports)] = Field(
        (),
        alias="tcp_port",
        description="sidecar: SERVICE=PORT: its app reaches tcp service SERVICE on "
        "127.0.0.1:PORT instead of the service's `port` (or at all, when it has none); repeat. "
        "For hosts where the service's port is taken.",
    )
    zone: (
        Annotated[str, AfterValidator(_zone), Field(json_schema_extra={"pattern": ZONE_PATTERN})]
        | None
    ) = Field(
        None,
        description="Where the proxy runs: it prefers endpoints in this zone and fails over to "
        "others when they are unhealthy; a sidecar's own endpoint gets this zone.",
    )
    node_id: (
        Annotated[
            str,
            AfterValidator(_node_id),
            Field(json_schema_extra={"minLength": 1, "maxLength": 256}),
        ]
        | None
    ) = Field(
        None, description="Envoy's node id (default: <role>-<gateway or service>-<admin_port>)."
    )
    admin_port: _Port = Field(DEFAULT_ADMIN_PORT, description="Envoy's admin port, on 127.0.0.1.")
    xds_host: (
        Annotated[str, AfterValidator(_host), Field(json_schema_extra={"minLength": 1})] | None
    ) = Field(
        None, description="Where Envoy reaches xDS (default: the server's advertised address)."
    )
    xds_port: _Port | None = Field(
        None, description="The xDS port (default: the server's xDS port)."
    )
    delta: bool = Field(False, description="Use delta xDS instead of state of the world.")

    @model_validator(mode="after")
    def _fits_the_role(self) -> Self:
        missing = [field for field in self._required() if getattr(self, field) is None]
        if missing:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "missing",
                            "required when role is {role} (a {role} bootstrap needs {field})",
                            {"role": self.role.value, "field": field},
                        ),
                        loc=(field,),
                        input=None,
                    )
                    for field in missing
                ],
            )
        if self.role == Role.GATEWAY:
            given = [f for f in _SIDECAR_ONLY if getattr(self, f) is not None]
            given += ["tcp_ports"] if self.tcp_ports else []
            if given:
                raise _invalid(f"a gateway bootstrap takes no sidecar options (got {given})")
        else:
            if self.gateway is not None:
                raise _invalid("a sidecar bootstrap takes no gateway name")
            self._check_distinct_ports()
        return self

    def _required(self) -> tuple[str, ...]:
        return ("gateway",) if self.role == Role.GATEWAY else ("service", *_SIDECAR_PORTS)

    def _check_distinct_ports(self) -> None:
        """Reject two roles on one port: the sidecar's Envoy and app share the host's ports."""
        seen: dict[int, str] = {}
        given = [(field, getattr(self, field)) for field in (*_SIDECAR_PORTS, "admin_port")]
        given += [(f"tcp_port {item}", int(item.partition("=")[2])) for item in self.tcp_ports]
        for field, port in given:
            if port in seen:
                raise _invalid(f"{field} and {seen[port]} must differ (both {port})")
            seen[port] = field

    @property
    def name(self) -> str:
        """The gateway or service it serves."""
        name = self.gateway if self.role == Role.GATEWAY else self.service
        assert name is not None  # checked by _fits_the_role
        return name

    @property
    def subject(self) -> Subject:
        """The identity it speaks for, whose node token its bootstrap carries."""
        if self.role == Role.GATEWAY:
            return Subject.gateway(self.name)
        return Subject.service(self.name)

    def with_server_defaults(self, *, xds_host: str, xds_port: int) -> NodeOptions:
        """Fill what was left to the server: the xDS address, and the node id
        `<role>-<gateway or service>-<admin_port>` (unique per host: two Envoys on one host
        cannot share an admin port)."""
        return NodeOptions.model_validate(
            {
                **self.model_dump(),
                "node_id": self.node_id or f"{self.role.value}-{self.name}-{self.admin_port}",
                "xds_host": self.xds_host or xds_host,
                "xds_port": self.xds_port or xds_port,
            }
        )

    def query(self) -> dict[str, str | int | bool | list[str]]:
        """The options given (not left to defaults) as GET /bootstrap query parameters;
        `delta` always."""
        given = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return {**given, "delta": self.delta}


def node_metadata(options: NodeOptions, token: str | None = None) -> dict[str, Any]:
    """The `meshplane` struct of a bootstrap's node metadata: what `proxy_from_node` reads."""
    meta: dict[str, Any] = {"role": options.role.value}
    if options.role == Role.GATEWAY:
        meta["gateway"] = options.gateway
    else:
        meta["service"] = options.service
        meta.update({field: getattr(options, field) for field in _SIDECAR_PORTS})
        if options.address is not None:  # else the control plane uses the connection's address
            meta["address"] = options.address
        if options.labels:
            meta["labels"] = dict(label.split("=", 1) for label in options.labels)
        if options.tcp_ports:
            meta["tcp_ports"] = {
                service: int(port) for service, _, port in map(_split, options.tcp_ports)
            }
    meta["admin_port"] = options.admin_port  # where the stats listener reads from
    if token:
        meta["token"] = token
    if options.zone is not None:
        meta["zone"] = options.zone
    return meta


def proxy_from_node(node_id: str, metadata: Mapping[str, object]) -> Proxy:
    """Read a proxy's identity from its node id and node metadata (as plain JSON values).

    Raises ValueError naming the missing or bad metadata key.
    """
    if not node_id:
        raise ValueError("node.id is empty")
    meta = metadata.get(METADATA_KEY)
    if not isinstance(meta, Mapping):
        raise ValueError("node metadata has no 'meshplane' section; use `meshplane bootstrap`")
    role = meta.get("role")
    token = meta.get("token") if isinstance(meta.get("token"), str) else None
    zone = _read_zone(meta)
    admin = _read_port(meta, "admin_port") if meta.get("admin_port") is not None else None
    if role == Role.GATEWAY:
        group = ProxyGroup(
            Role.GATEWAY, gateway=_read_text(meta, "gateway"), zone=zone, admin_port=admin
        )
        return Proxy(node_id, group, token=token)
    if role == Role.SIDECAR:
        group = ProxyGroup(
            Role.SIDECAR,
            service=_read_text(meta, "service"),
            inbound_port=_read_port(meta, "inbound_port"),
            app_port=_read_port(meta, "app_port"),
            outbound_port=_read_port(meta, "outbound_port"),
            zone=zone,
            admin_port=admin,
            tcp_ports=_read_tcp_ports(meta),
        )
        address = meta.get("address")
        return Proxy(
            node_id,
            group,
            address if isinstance(address, str) and address else None,
            _read_labels(meta),
            token,
        )
    raise ValueError(f"node metadata meshplane.role must be 'gateway' or 'sidecar', not {role!r}")


def _read_port(meta: Mapping[str, object], key: str) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"node metadata meshplane.{key} is missing")
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"node metadata meshplane.{key} is not a port: {value!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"node metadata meshplane.{key} is not a port: {value!r}")
    return port


def _read_text(meta: Mapping[str, object], key: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"node metadata meshplane.{key} is missing")
    return value


def _read_labels(meta: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    labels = meta.get("labels") or {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ValueError("node metadata meshplane.labels must map strings to strings")
    return tuple(sorted(labels.items()))


def _split(item: str) -> tuple[str, str, str]:
    return item.partition("=")


def _read_tcp_ports(meta: Mapping[str, object]) -> tuple[tuple[str, int], ...]:
    ports = meta.get("tcp_ports") or {}
    if not isinstance(ports, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int | float) and 1 <= v <= 65535
        for k, v in ports.items()
    ):
        raise ValueError("node metadata meshplane.tcp_ports must map service names to ports")
    return tuple(sorted((k, int(v)) for k, v in ports.items()))


def _read_zone(meta: Mapping[str, object]) -> str | None:
    zone = meta.get("zone")
    if zone is None or zone == "":
        return None
    if not isinstance(zone, str):
        raise ValueError("node metadata meshplane.zone must be a string")
    return zone
