"""Registered SPDCI senders: who may send messages, with which keys, and where we may call back.

A sender belongs to one agency: a bearer token of another agency cannot use it. Callback URLs
must fall under one of the sender's allow-list prefixes (same scheme, host and port; path
under the prefix's path), checked when a request names its ``sender_uri`` and again before
every delivery, so a changed allow-list stops callbacks already queued. A sender may have a
rate limit (``max_messages_per_minute``), so one runaway client cannot take the registry's
capacity from the others; it is counted over the messages the registry recorded from it
(:func:`registry.dci.transactions.seconds_until_allowed`).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import signature
from registry.dci.models import DciSender
from shared.errors import Conflict, NotFound

__all__ = [
    "SenderCreate",
    "SenderExists",
    "SenderNotFound",
    "SenderRead",
    "SenderUpdate",
    "create_sender",
    "get_active_sender",
    "get_sender_or_raise",
    "list_senders",
    "update_sender",
    "url_allowed",
]

_LOOPBACK_NAMES = {"localhost"}
# Fields an update may set to null (the others ignore an explicit null).
_NULLABLE = frozenset({"name", "max_messages_per_minute"})


class SenderNotFound(NotFound):
    type = "dci-sender-not-found"
    title = "SPDCI sender not found"


class SenderExists(Conflict):
    type = "dci-sender-exists"
    title = "SPDCI sender already registered"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_callback_prefix(url: str) -> str:
    """An allow-list entry: absolute https URL (http only to a loopback host, for development)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("must use https (plain http only to 127.0.0.1/localhost)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not carry credentials, a query or a fragment")
    return url


def check_public_key(value: str) -> str:
    signature.load_public_key(value)
    return value.strip()


CallbackPrefix = Annotated[str, Field(max_length=2000), AfterValidator(check_callback_prefix)]
PublicKey = Annotated[
    str,
    Field(
        max_length=4000,
        description="Ed25519 public key: PEM, or base64 of the 32 raw bytes",
    ),
    AfterValidator(check_public_key),
]
KeyId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^|\s]+$")]
MessagesPerMinute = Annotated[
    int | None,
    Field(
        ge=1,
        le=1_000_000,
        description="Messages it may send a minute (over: 429 err.request.too_many_requests); "
        "null: no limit",
    ),
]


class SenderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender_id: str = Field(min_length=1, max_length=200, pattern=r"^[^|\s]+$")
    agency: str = Field(min_length=1, max_length=100, description="The agency of its tokens")
    name: str | None = Field(default=None, max_length=200)
    public_keys: dict[KeyId, PublicKey] = Field(min_length=1)
    callback_allow_list: list[CallbackPrefix] = Field(default_factory=list, max_length=50)
    active: bool = True
    max_messages_per_minute: MessagesPerMinute = None


class SenderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    public_keys: dict[KeyId, PublicKey] | None = Field(default=None, min_length=1)
    callback_allow_list: list[CallbackPrefix] | None = Field(default=None, max_length=50)
    active: bool | None = None
    max_messages_per_minute: MessagesPerMinute = None


class SenderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sender_id: str
    agency: str
    name: str | None
    public_keys: dict[str, str]
    callback_allow_list: list[str]
    active: bool
    max_messages_per_minute: int | None
    created_at: datetime
    modified_at: datetime


def url_allowed(sender: DciSender, url: str) -> bool:
    """True when ``url`` lies under one of the sender's allow-list prefixes."""
    try:
        target = urlsplit(url)
        if target.scheme not in ("https", "http") or not target.hostname:
            return False
        if target.username or target.password:
            return False
        target_port = target.port
    except ValueError:
        return False
    for prefix in sender.callback_allow_list:
        allowed = urlsplit(prefix)
        if (allowed.scheme, allowed.hostname, allowed.port) != (
            target.scheme,
            target.hostname,
            target_port,
        ):
            continue
        base = allowed.path.rstrip("/")
        if target.path == base or target.path.startswith(base + "/"):
            return True
    return False


async def get_active_sender(session: AsyncSession, sender_id: str) -> DciSender | None:
    sender: DciSender | None = await session.scalar(
        select(DciSender).where(DciSender.sender_id == sender_id, DciSender.active)
    )
    return sender


async def get_sender_or_raise(session: AsyncSession, sender_id: str) -> DciSender:
    sender = await session.get(DciSender, sender_id)
    if sender is None:
        raise SenderNotFound(f"no SPDCI sender {sender_id!r}")
    return sender


async def list_senders(session: AsyncSession) -> list[DciSender]:
    return list(await session.scalars(select(DciSender).order_by(DciSender.sender_id)))


async def create_sender(session: AsyncSession, sender_in: SenderCreate) -> DciSender:
    inserted: DciSender | None = await session.scalar(
        insert(DciSender)
        .values(**sender_in.model_dump())
        .on_conflict_do_nothing(index_elements=[DciSender.sender_id])
        .returning(DciSender)
    )
    if inserted is None:
        raise SenderExists(f"the SPDCI sender {sender_in.sender_id!r} is already registered")
    return inserted


async def update_sender(
    session: AsyncSession, sender_id: str, sender_in: SenderUpdate
) -> DciSender:
    sender = await get_sender_or_raise(session, sender_id)
    for field, value in sender_in.model_dump(exclude_unset=True).items():
        if value is not None or field in _NULLABLE:
            setattr(sender, field, value)
    await session.flush()
    await session.refresh(sender)
    return sender
