from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import SharedSettings

__all__ = ["RegistrySettings"]


class RegistrySettings(SharedSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore", frozen=True)

    service_name: str = "registry"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/simpul_registry"
    import_max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest file POST /v1/imports accepts (other routes keep max_body_bytes).",
    )
    import_batch_size: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="Rows per transaction of a reconciliation import (households are never split).",
    )
    lookup_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections per process of the by-NIK hot path (registry.api.hot_lookups), "
        "beside database_pool_size.",
    )
