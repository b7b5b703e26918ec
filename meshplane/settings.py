"""Runtime settings, read once at startup from flags and MESHPLANE_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from meshplane.certs import MAX_OVERLAP

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
    xds_host: str = Field("0.0.0.0", description="Address the ADS gRPC server listens on.")
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
        description="Encrypts private keys at rest and signs node tokens; the same on every "
        "replica. Unset: read from secret_key_file (generated there on first start).",
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
    xds_tls: bool = Field(
        False,
        description="Serve xDS over TLS with a certificate from the mesh CA; generated bootstraps "
        "then trust the mesh roots and expect spiffe://<trust domain>/control-plane/xds.",
    )
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body the REST API reads; a larger one is a 413 before it "
        "is read whole.",
    )
    require_node_token: bool = Field(
        True, description="Refuse xDS streams whose node token is missing or wrong."
    )
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
