from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
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
        description="Connections per process of the by-NIK hot path (registry.lookup.hot_path), "
        "beside database_pool_size.",
    )
    read_audit_commit: Literal["durable", "async"] = Field(
        default="durable",
        description="How the REST lookups (by id, NIK and KK, batch, search, histories) commit "
        "their audit rows. durable: an answer leaves once its audit rows are on disk. async: "
        "the audit rows still commit with the read, in the same statement, but the answer does "
        "not wait for the disk (PostgreSQL's synchronous_commit off), so a crash of PostgreSQL "
        "can lose the read audits of its last ~0.6 s (3 x wal_writer_delay); never data, "
        "changes or events, which always wait, and SPDCI searches, which also record their "
        "transaction, always wait too. Worth it where the disk's flush time decides lookup "
        "latency (README, Registry).",
    )
    dci_sender_id: str = Field(
        default="simpul-registry",
        description="The registry's own SPDCI id: sender_id of its callbacks, kidId of its keys.",
    )
    dci_signing_key: SecretStr | None = Field(
        default=None,
        description="PEM Ed25519 private key that signs SPDCI answers and callbacks. Unset, "
        "one key is generated once and kept in the database for every process (production "
        "logs a warning: a configured key stays out of the database).",
    )
    dci_signing_key_id: str = "registry-1"
    dci_max_items_per_message: int = Field(
        default=100, ge=1, le=10_000, description="Largest header.total_count accepted."
    )
    dci_message_ts_skew_seconds: int = Field(
        default=300, ge=0, description="How far in the future a header.message_ts may be."
    )
    dci_search_timeout_ms: int = Field(
        default=5_000,
        ge=1,
        le=600_000,
        description="Statement timeout of an SPDCI search (SET LOCAL in its transaction): a "
        "search that runs longer is answered err.request.timeout and leaves nothing behind.",
    )
    dci_max_rejected_items: int = Field(
        default=10,
        ge=0,
        description="More rejected items than this in one message: the answer's header says "
        "rjct.errors.too_many (each item still carries its own reason).",
    )
    dci_callback_timeout_seconds: float = Field(default=10.0, gt=0)
    dci_callback_max_attempts: int = Field(default=8, ge=1, le=50)
    dci_callback_backoff_seconds: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles each time (with jitter)."
    )
    dci_callback_backoff_max_seconds: float = Field(default=900.0, ge=0)

    @property
    def read_audits_wait_for_flush(self) -> bool:
        return self.read_audit_commit == "durable"
