"""The registry's SPDCI signing key, the same in every process.

``REGISTRY_DCI_SIGNING_KEY`` (PEM) is the key when set. Without it, the first process to start
generates one and stores it in ``dci_registry_keys``, and every other process (API, worker,
replicas) loads that one: a sync answer and a callback then verify against the single key
``/.well-known/jwks.json`` publishes, and the key survives restarts so partners can pin it.
"""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.dci.models import DciRegistryKey
from registry.dci.signature import RegistrySigner, load_private_key
from registry.settings import RegistrySettings
from shared.db import session_scope

__all__ = ["RegistryKeyring"]


class RegistryKeyring:
    """Gives the :class:`RegistrySigner`: the configured key, else the stored one."""

    def __init__(self, settings: RegistrySettings) -> None:
        self._settings = settings
        self._signer: RegistrySigner | None = None
        self._loading = asyncio.Lock()
        configured = settings.dci_signing_key
        if configured is not None:
            self._set(load_private_key(configured.get_secret_value()))

    def _set(self, key: Ed25519PrivateKey) -> None:
        self._signer = RegistrySigner(
            sender_id=self._settings.dci_sender_id,
            key_id=self._settings.dci_signing_key_id,
            private_key=key,
        )

    async def signer(self, sessionmaker: async_sessionmaker[AsyncSession]) -> RegistrySigner:
        """The signer, loading (or creating) the stored key on first use: a process whose
        database is down still starts, and signs once the database answers."""
        if self._signer is None:
            async with self._loading:
                if self._signer is None:
                    await self._load(sessionmaker)
        assert self._signer is not None
        return self._signer

    async def _load(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        generated = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        key_id = self._settings.dci_signing_key_id
        async with session_scope(sessionmaker) as session:
            # Two processes starting at once: one insert wins, both read the winner.
            await session.execute(
                insert(DciRegistryKey)
                .values(key_id=key_id, private_key_pem=generated.decode())
                .on_conflict_do_nothing(index_elements=[DciRegistryKey.key_id])
            )
            pem = await session.scalar(
                select(DciRegistryKey.private_key_pem).where(DciRegistryKey.key_id == key_id)
            )
        assert pem is not None
        self._set(load_private_key(pem))
