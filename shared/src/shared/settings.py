"""Typed configuration shared by every service.

Each service subclasses :class:`SharedSettings` with its own ``env_prefix`` (``REGISTRY_``,
``PROGRAMS_``...), so one machine can run all four with different databases. Settings are read
once, in ``create_app()`` or a CLI command, never at import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BrokerProfile", "Environment", "SharedSettings"]

Environment = Literal["development", "test", "production"]
BrokerProfile = Literal["tansu", "kafka"]


class SharedSettings(BaseSettings):
    """What every Simpul service needs: a database, a broker, token keys, limits."""

    model_config = SettingsConfigDict(env_prefix="SIMPUL_", extra="ignore", frozen=True)

    service_name: str = "simpul"
    environment: Environment = "development"
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:55432/simpul",
        description="SQLAlchemy URL of this service's own database (asyncpg driver).",
    )
    database_pool_size: int = Field(
        default=20, ge=1, le=200, description="Connections per process; size it to its concurrency."
    )
    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    kafka_client_id: str | None = None
    kafka_group_prefix: str = Field(
        default="",
        description="Prepended to consumer group names, so two deployments can share a broker.",
    )
    kafka_broker_profile: BrokerProfile = Field(
        default="tansu",
        description=(
            "'kafka' turns on the idempotent producer (acks=all, enable_idempotence); the "
            "in-memory Tansu broker does not support it, so the embedded default is 'tansu'."
        ),
    )
    kafka_request_timeout_ms: int = Field(
        default=15_000, ge=1_000, description="How long a send may wait for the broker's ack."
    )
    jwt_public_key: SecretStr | None = Field(
        default=None, description="PEM public key that verifies bearer tokens (EdDSA)."
    )
    jwt_issuer: str = "simpul"
    jwt_audience: str = "simpul"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval_seconds: float = Field(default=1.0, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_backoff_seconds: float = Field(default=0.2, ge=0)
    idempotency_key_ttl_hours: int = Field(default=24, ge=1)
    inbox_retention_days: int = Field(
        default=30, ge=1, description="Keep processed event ids longer than topic retention."
    )
    job_batch_size: int = Field(default=10, ge=1, le=1_000, description="Jobs claimed at once.")
    job_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often a worker looks for due jobs and deadlines."
    )
    job_retention_days: int = Field(
        default=30, ge=1, description="Keep done and cancelled jobs this long (failed: always)."
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> SharedSettings:
        if self.environment == "production" and self.jwt_public_key is None:
            raise ValueError("jwt_public_key must be set in production")
        return self

    @property
    def kafka_client_prefix(self) -> str:
        return self.kafka_client_id or f"simpul-{self.service_name}"
