from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from shared.settings import SharedSettings

__all__ = ["ReferralsSettings"]


class ReferralsSettings(SharedSettings):
    model_config = SettingsConfigDict(env_prefix="REFERRALS_", extra="ignore", frozen=True)

    service_name: str = "referrals"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:55432/simpul_referrals"
