"""Runtime settings, read once at startup from flags and MESHPLANE_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything `meshplane serve` needs; built in cli.py and passed down, never a global."""

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
        description="How long a disconnected sidecar stays an endpoint before it is removed.",
    )
