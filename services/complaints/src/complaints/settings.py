from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import SharedSettings

__all__ = ["ComplaintsSettings"]


class ComplaintsSettings(SharedSettings):
    model_config = SettingsConfigDict(env_prefix="COMPLAINTS_", extra="ignore", frozen=True)

    service_name: str = "complaints"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/simpul_complaints"
