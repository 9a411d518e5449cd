"""Receiving an SPDCI message: the checks every endpoint runs, and the replies they build.

:func:`receive` runs, in this order: bearer token (401/403 as the spec's
``HttpErrorResponse``), envelope JSON (``err.request.bad``), registered sender of the token's
agency (``err.sender_id.invalid``), Ed25519 signature (``err.signature.missing`` /
``err.signature.invalid``), ``receiver_id``, the sender's rate limit
(``err.request.too_many_requests``, HTTP 429 with Retry-After), encryption
(``err.encryption.invalid``), version (``err.version.not_supported``), message shape, callback
URL of async calls (``err.sender_uri.invalid``), then the header checks whose ``rjct.*``
travel in the answer's header (version, message_ts, action, total_count, duplicate message_id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import envelope as envelopes
from registry.dci import senders, signature, transactions
from registry.dci.envelope import Envelope, EnvelopeError, HeaderRejection
from registry.dci.keys import RegistryKeyring
from registry.dci.models import DciSender, DciTransaction
from registry.settings import RegistrySettings
from shared.auth import Caller
from shared.errors import ProblemError
from shared.service import get_runtime, typed_settings
from shared.state import app_state

__all__ = [
    "READ_SCOPE",
    "Received",
    "Signer",
    "ack",
    "err",
    "receive",
    "settings_of",
    "start_transaction",
    "sync_answer",
]

READ_SCOPE = "registry:read"


settings_of = typed_settings(RegistrySettings)


async def get_signer(request: Request) -> signature.RegistrySigner:
    keyring = app_state(request, "dci_keyring", RegistryKeyring)
    return await keyring.signer(get_runtime(request).sessionmaker)


Signer = Annotated[signature.RegistrySigner, Depends(get_signer)]


def _http_error(status_code: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
    return JSONResponse(
        {"errors": [{"code": code, "message": message}]}, status_code=status_code, headers=headers
    )


def err(error: EnvelopeError) -> JSONResponse:
    return JSONResponse(
        envelopes.err(error.code, error.message),
        status_code=error.status_code,
        headers=error.headers,
    )


def ack(correlation_id: str) -> JSONResponse:
    return JSONResponse(envelopes.ack(correlation_id), status_code=status.HTTP_202_ACCEPTED)


@dataclass
class Received:
    caller: Caller
    sender: DciSender
    envelope: Envelope
    message: dict[str, Any]
    transaction_id: str
    rejection: HeaderRejection | None
    callback_uri: str | None

    @property
    def sender_id(self) -> str:
        return self.sender.sender_id


async def _authenticate(request: Request) -> Caller | JSONResponse:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _http_error(401, "err.request.unauthorized", "send a bearer token")
    verifier = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        return _http_error(401, "err.request.unauthorized", "no token key is configured")
    try:
        caller: Caller = verifier.verify(token.strip())
    except ProblemError as exc:
        return _http_error(401, "err.request.unauthorized", exc.detail or exc.title)
    request.state.caller = caller
    if not caller.has_scope(READ_SCOPE):
        return _http_error(403, "err.request.forbidden", f"the token lacks {READ_SCOPE}")
    return caller


async def _authentic_sender(
    session: AsyncSession, envelope: Envelope, caller: Caller, registry_id: str
) -> DciSender:
    sender = await senders.get_active_sender(session, envelope.sender_id)
    if sender is None or sender.agency != caller.agency:
        # Another agency's sender reads exactly like an unregistered one.
        raise EnvelopeError(
            "err.sender_id.invalid",
            f"{envelope.sender_id!r} is not an active sender registered for {caller.agency}",
        )
    if envelope.signature is None:
        raise EnvelopeError("err.signature.missing", "signed messages only: add a signature")
    try:
        parsed = signature.parse(envelope.signature)
        if parsed.sender_id != sender.sender_id:
            raise signature.SignatureInvalid("the signature names another sender")
        key_pem = sender.public_keys.get(parsed.key_id)
        if key_pem is None:
            raise signature.SignatureInvalid(f"unknown key id {parsed.key_id!r}")
        signature.verify(
            parsed,
            signature.load_public_key(key_pem),
            envelope.raw_header,
            envelope.raw_message,
        )
    except signature.SignatureInvalid as exc:
        raise EnvelopeError("err.signature.invalid", str(exc)) from exc
    receiver_id = envelope.header.get("receiver_id")
    if receiver_id not in (None, "", registry_id):
        raise EnvelopeError(
            "err.receiver_id.invalid", f"this registry is {registry_id!r}, not {receiver_id!r}"
        )
    return sender


async def _check_rate(session: AsyncSession, sender: DciSender) -> None:
    """``err.request.too_many_requests`` (HTTP 429 with Retry-After) over the sender's limit."""
    limit = sender.max_messages_per_minute
    if limit is None:
        return
    wait = await transactions.seconds_until_allowed(
        session, sender_id=sender.sender_id, per_minute=limit
    )
    if wait is not None:
        raise EnvelopeError(
            "err.request.too_many_requests",
            f"{sender.sender_id!r} may send {limit} messages a minute; send this one again "
            f"in {wait} s",
            status_code=429,
            headers={"Retry-After": str(wait)},
        )


def _check_not_encrypted(envelope: Envelope) -> None:
    message = envelope.message
    if envelope.header.get("is_msg_encrypted") is True or (
        isinstance(message, dict) and "ciphertext" in message
    ):
        raise EnvelopeError(
            "err.encryption.invalid",
            "encrypted messages (EncryptedMessage/JWE) are not accepted by this registry; "
            "send the message in clear over TLS",
        )


def _message_shape(envelope: Envelope, items_key: str | None) -> tuple[dict[str, Any], str]:
    message = envelope.message
    if not isinstance(message, dict):
        raise EnvelopeError("err.request.bad", "message must be an object")
    transaction_id = message.get("transaction_id")
    if isinstance(transaction_id, int) and not isinstance(transaction_id, bool):
        transaction_id = message["transaction_id"] = str(transaction_id)
    if not isinstance(transaction_id, str) or not 0 < len(transaction_id) <= 99:
        raise EnvelopeError("err.request.bad", "message.transaction_id: 1 to 99 characters")
    if items_key is not None and not isinstance(message.get(items_key), list):
        raise EnvelopeError("err.request.bad", f"message.{items_key} must be an array")
    return message, transaction_id


def _callback_uri(envelope: Envelope, sender: DciSender) -> str:
    uri = envelope.header.get("sender_uri")
    if not isinstance(uri, str) or not uri:
        raise EnvelopeError("err.sender_uri.invalid", "async calls need header.sender_uri")
    if not senders.url_allowed(sender, uri):
        raise EnvelopeError(
            "err.sender_uri.invalid", "header.sender_uri is outside the sender's allow-list"
        )
    return uri


async def receive(
    request: Request,
    session: AsyncSession,
    *,
    action: str,
    items_key: str | None,
    is_async: bool,
    items_are_requests: bool = True,
) -> Received | JSONResponse:
    """``items_are_requests``: header.total_count must equal the number of items (not so for
    the codes of one unsubscribe request)."""
    caller = await _authenticate(request)
    if isinstance(caller, JSONResponse):
        return caller
    settings = settings_of(request)
    try:
        envelope = envelopes.parse_envelope(await request.body())
        # The spec's `Signature` security scheme carries the same value as an HTTP header.
        envelope.signature = envelope.signature or request.headers.get("signature") or None
        sender = await _authentic_sender(session, envelope, caller, settings.dci_sender_id)
        await _check_rate(session, sender)
        _check_not_encrypted(envelope)
        envelopes.check_version(envelope.header)  # raises err.version.not_supported
        message, transaction_id = _message_shape(envelope, items_key)
        callback_uri = _callback_uri(envelope, sender) if is_async else None
    except EnvelopeError as exc:
        return err(exc)
    items = message.get(items_key) if items_key and items_are_requests else None
    rejection = envelopes.check_header(
        envelope.header,
        action=action,
        item_count=len(items) if isinstance(items, list) else None,
        max_items=settings.dci_max_items_per_message,
        ts_skew=timedelta(seconds=settings.dci_message_ts_skew_seconds),
    )
    first_time = await transactions.record_message(
        session, sender_id=sender.sender_id, message_id=envelope.message_id, action=action
    )
    if rejection is None and not first_time:
        rejection = HeaderRejection(
            "rjct.message_id.duplicate",
            f"message_id {envelope.message_id!r} was already received from this sender",
        )
    return Received(
        caller=caller,
        sender=sender,
        envelope=envelope,
        message=message,
        transaction_id=transaction_id,
        rejection=rejection,
        callback_uri=callback_uri,
    )


def _reference_ids(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    return [
        item["reference_id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("reference_id"), str)
    ]


async def start_transaction(
    session: AsyncSession, received: Received, *, txn_type: str, items_key: str | None
) -> DciTransaction:
    return await transactions.start(
        session,
        sender_id=received.sender_id,
        message_id=received.envelope.message_id,
        transaction_id=received.transaction_id,
        txn_type=txn_type,
        caller=received.caller,
        request=received.message,
        reference_ids=_reference_ids(received.message.get(items_key) if items_key else None),
        callback_uri=received.callback_uri,
        status="rjct" if received.rejection else "rcvd",
    )


def sync_answer(
    signer: signature.RegistrySigner,
    received: Received,
    *,
    action: str,
    message: dict[str, Any],
    count: int,
    rejection: HeaderRejection | None = None,
) -> JSONResponse:
    """The signed answer of a sync call; ``rejection`` says what the answered items earned
    (``rjct.errors.too_many``) when the header itself was fine."""
    header = envelopes.callback_header(
        action=action,
        registry_id=signer.sender_id,
        receiver_id=received.sender_id,
        total_count=count,
        completed_count=0 if received.rejection else count,
        rejection=received.rejection or rejection,
    )
    return JSONResponse(signer.envelope(header, message))
