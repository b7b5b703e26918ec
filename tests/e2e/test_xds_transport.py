"""Envoy from a generated bootstrap reaches an xDS server bound off loopback over TLS: no flag
asked for it, the bootstrap the API generates trusts the mesh roots and expects the control
plane's SPIFFE ID, and traffic flows on what Envoy receives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshplane.model import XDS_SERVER
from tests.e2e.conftest import make_settings, running_mesh
from tests.integration.xds.test_xds_transport import BIND, CONNECT
from tests.support.backends import HttpBackend
from tests.support.envoy import EnvoyProcess
from tests.support.ports import free_port
from tests.support.traffic import answered_by, wait_until_served


@pytest.mark.parametrize(
    ("bind", "advertise"),
    [(BIND, CONNECT), ("0.0.0.0", "127.0.0.1")],  # the second: `meshplane serve`'s defaults
    ids=["address", "defaults"],
)
async def test_envoy_from_a_generated_bootstrap_connects_over_tls(
    tmp_path: Path, backends: Callable[[str], HttpBackend], bind: str, advertise: str
) -> None:
    web = backends("web")
    settings = make_settings(tmp_path, xds_host=bind, advertise_address=advertise)
    async with running_mesh(settings) as mesh:
        port = free_port()
        await mesh.gateway_to("web", web.port, port)
        boot = await mesh.bootstrap(role="gateway", gateway="edge", admin_port=free_port())
        xds = boot["static_resources"]["clusters"][0]
        tls = xds["transport_socket"]["typed_config"]["common_tls_context"]["validation_context"]
        assert tls["match_typed_subject_alt_names"][0]["matcher"]["exact"] == (
            XDS_SERVER.spiffe_id(settings.trust_domain)
        )
        endpoint = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        assert endpoint["address"]["socket_address"]["address"] == advertise
        async with EnvoyProcess(boot) as envoy:
            await wait_until_served(f"http://127.0.0.1:{port}/", lambda r: answered_by(r) == "web")
            stats = await envoy.stats()
            assert stats["cluster.meshplane-xds.ssl.handshake"] >= 1
            assert stats.get("cluster.meshplane-xds.ssl.fail_verify_san", 0) == 0
