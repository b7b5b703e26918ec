"""The demo mesh, defined once: the compose file, envoy-configs/ and `meshplane demo` all follow it.

frontend -> orders (v1 and v2) -> payments, each beside its own sidecar, behind gateway `edge`.
Every port is distinct so the same nodes run as local processes (one host) and in containers;
only the xDS host differs ("meshplane" in compose, 127.0.0.1 locally). Their bootstraps are
fetched from the running control plane, as a real deployment does (`fetch_bootstraps`): each
carries a node token issued for it and the mesh roots xDS is served with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meshplane.cli import ApiClient
from meshplane.model import NodeOptions, Role
from meshplane.private_files import write_private

__all__ = [
    "COMPOSE_XDS_HOST",
    "DEMO_ADMIN_TOKEN",
    "DEMO_SECRET",
    "GATEWAY",
    "INSTANCES",
    "XDS_PORT",
    "Instance",
    "config_dir",
    "demo_nodes",
    "fetch_bootstraps",
]

DEMO_SECRET = "meshplane-demo-secret-not-for-production"
DEMO_ADMIN_TOKEN = "meshplane-demo-admin-token-not-for-production"
"""The demo's admin API token (MESHPLANE_ADMIN_TOKEN): published, so fit for the demo only."""
COMPOSE_XDS_HOST = "meshplane"
XDS_PORT = 18000
API_PORT = 8080
GATEWAY_PORT = 8000
GATEWAY_ADMIN_PORT = 9901


@dataclass(frozen=True, slots=True)
class Instance:
    """One app instance and its sidecar."""

    service: str
    version: str
    app_port: int
    inbound_port: int
    outbound_port: int
    admin_port: int
    calls: str | None = None  # the service it calls on each request

    @property
    def node_id(self) -> str:
        return f"{self.service}-{self.version}"


INSTANCES: tuple[Instance, ...] = (
    Instance("frontend", "v1", 8101, 15101, 15102, 9911, calls="orders"),
    Instance("orders", "v1", 8201, 15201, 15202, 9921, calls="payments"),
    Instance("orders", "v2", 8211, 15211, 15212, 9922, calls="payments"),
    Instance("payments", "v1", 8301, 15301, 15302, 9931),
)
GATEWAY = "edge"


def node_options(instance: Instance | None, xds_host: str | None = None) -> NodeOptions:
    """The node of one sidecar (or of the gateway when `instance` is None); `xds_host` None
    leaves the xDS address to the control plane, whose bootstraps then name every live
    replica's (compose runs two)."""
    # Unset, not None: options left unset are not sent, so the control plane fills them in.
    host = {"xds_host": xds_host} if xds_host is not None else {}
    if instance is None:
        options = NodeOptions(
            role=Role.GATEWAY,
            node_id=GATEWAY,
            xds_port=XDS_PORT,
            admin_port=GATEWAY_ADMIN_PORT,
            gateway=GATEWAY,
            **host,
        )
    else:
        options = NodeOptions(
            role=Role.SIDECAR,
            node_id=instance.node_id,
            xds_port=XDS_PORT,
            admin_port=instance.admin_port,
            service=instance.service,
            inbound_port=instance.inbound_port,
            app_port=instance.app_port,
            outbound_port=instance.outbound_port,
            labels=(f"version={instance.version}",),
            **host,
        )
    return options


def demo_nodes(xds_host: str | None = None) -> dict[str, NodeOptions]:
    """Bootstrap file name -> node, for the gateway and every sidecar."""
    out = {f"{GATEWAY}.yaml": node_options(None, xds_host)}
    for instance in INSTANCES:
        out[f"{instance.node_id}.yaml"] = node_options(instance, xds_host)
    return out


def fetch_bootstraps(client: ApiClient, directory: Path, xds_host: str | None = None) -> list[Path]:
    """Ask the control plane for every demo node's bootstrap and write them into `directory`
    (mode 0600: each holds a node token); returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, options in demo_nodes(xds_host).items():
        path = directory / name
        write_private(path, client.bootstrap(options).text)
        written.append(path)
    return written


def config_dir() -> Path:
    """envoy-configs/demo in the source tree (the repository's top level)."""
    return Path(__file__).resolve().parents[2] / "envoy-configs" / "demo"
