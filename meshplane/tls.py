"""TLS for what the control plane serves: the REST API's server context (from certificate files
or from the mesh CA), and a warning at every start for what is served in clear on the network.
(Whether xDS serves TLS is `Settings.xds_serves_tls`; serve.py has its certificate issued.)

With a mesh certificate the API is `spiffe://<trust domain>/control-plane/api`, also named by the
host names a client types (localhost, the loopback addresses, this host's name, the API and the
advertised address), so an ordinary HTTPS client that trusts the mesh roots verifies it. The
context is reloaded in place whenever the CA renews that certificate or rotates its root, and the
roots (public) are written to a file for clients' `--ca-file`.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import tempfile
from pathlib import Path

from meshplane.certs import CertificateAuthority
from meshplane.host_names import is_loopback
from meshplane.model import API_SERVER, IdentityState
from meshplane.settings import Settings

__all__ = ["api_host_names", "api_ssl_context", "warn_if_clear"]

log = logging.getLogger(__name__)


def warn_if_clear(settings: Settings) -> None:
    """At every start: what is reachable from the network in clear is worth a warning."""
    if not settings.api_serves_tls and not is_loopback(settings.api_host):
        log.warning(
            "the REST API listens on %s without TLS: tokens and bootstraps cross the network in "
            "clear; use --api-tls or --api-tls-cert/--api-tls-key",
            settings.api_host,
        )
    if not settings.xds_serves_tls and not is_loopback(settings.xds_host):
        log.warning(
            "xDS listens on %s in plaintext (--xds-plaintext): node tokens cross the network in "
            "clear",
            settings.xds_host,
        )


def api_host_names(settings: Settings) -> list[str]:
    """The names a mesh certificate for the API carries besides its SPIFFE ID."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    for host in (settings.api_host, settings.advertise_address):
        if host not in ("0.0.0.0", "::", ""):
            names.append(host.strip("[]"))
    return list(dict.fromkeys(names))


async def api_ssl_context(
    settings: Settings, authority: CertificateAuthority
) -> ssl.SSLContext | None:
    """The API's server context (None without TLS); a mesh certificate is issued first."""
    if settings.api_tls_cert is not None and settings.api_tls_key is not None:
        context = _server_context()
        context.load_cert_chain(settings.api_tls_cert, settings.api_tls_key)
        return context
    if not settings.api_tls:
        return None
    await authority.ensure_server(API_SERVER.text, api_host_names(settings))
    context = _server_context()
    bundle = settings.ca_bundle_file
    served: dict[str, str] = {}  # what the context and the file hold now

    def follow(state: IdentityState) -> None:
        """Load a renewed certificate in place (new connections get it); rewrite the roots
        when they change (a root rotation adds the new root before anything is signed by it)."""
        leaf = state.leaves.get(API_SERVER.text)
        if leaf is not None and served.get("serial") != leaf.serial:
            _load_pem(context, leaf.cert_chain_pem, leaf.key_pem)
            served["serial"] = leaf.serial
        roots = "".join(state.trust_bundle)
        if served.get("roots") != roots:
            _write_public(bundle, roots)
            served["roots"] = roots

    def follow_later(state: IdentityState) -> None:
        """After the start, a failure here is logged: it must not fail the CA's own step."""
        try:
            follow(state)
        except Exception:
            log.exception("serving the renewed api certificate failed; the previous one stays")

    follow(authority.state)  # at the start, a failure stops the start
    authority.subscribe(follow_later)
    log.info("api tls from the mesh CA; roots written to %s (--ca-file)", bundle)
    return context


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_pem(context: ssl.SSLContext, cert_chain_pem: str, key_pem: bytes) -> None:
    """ssl reads certificates only from files: the key goes through an anonymous in-memory file
    where the platform has one, else a private temporary directory removed at once."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("meshplane-api-tls")
        try:
            os.write(fd, cert_chain_pem.encode() + b"\n" + key_pem)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as tmp:  # mode 0700
        path = Path(tmp) / "api.pem"
        path.touch(mode=0o600)
        path.write_bytes(cert_chain_pem.encode() + b"\n" + key_pem)
        context.load_cert_chain(path)


def _write_public(path: Path, pem: str) -> None:
    """Replace the file whole, so a client never reads half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(pem)
    partial.replace(path)
