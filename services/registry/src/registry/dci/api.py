"""SPDCI Social Registry endpoints under ``/spdci/v1.0.0``.

Each route lets :func:`registry.dci.inbound.receive` check the message, then calls the use case
in :mod:`registry.dci.service`. Sync endpoints answer a signed envelope; async ones answer
``ACK`` (202) and call back through :mod:`registry.dci.delivery` (an async search is answered
by a job, :mod:`registry.dci.scheduled`). More rejected items than
``dci_max_rejected_items`` put ``rjct.errors.too_many`` in the answer's header. Failures around
the routes (unknown path, database down, search timeout) are answered by
:mod:`registry.dci.errors`.

``senders_router`` is the registry administrator's side, outside the SPDCI base path: registering
the partner systems (senders) that may call it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import envelope as envelopes
from registry.dci import senders, service, spec, transactions
from registry.dci.delivery import enqueue_callback
from registry.dci.envelope import EnvelopeError, HeaderRejection
from registry.dci.inbound import (
    READ_SCOPE,
    Received,
    Signer,
    ack,
    err,
    receive,
    settings_of,
    start_transaction,
    sync_answer,
)
from registry.dci.models import DciSender, DciTransaction
from registry.dci.scheduled import schedule_search
from registry.dependencies import Admin
from shared.auth import bearer_token_declared
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

__all__ = ["BASE_PATH", "TAG", "router", "senders_router"]

BASE_PATH = "/spdci/v1.0.0"
TAG = "SPDCI Social Registry"
_MAX_CODES = 1000

router = APIRouter(prefix=BASE_PATH, tags=[TAG])
senders_router = APIRouter(prefix="/v1/dci/senders", tags=["SPDCI senders"])
_ADMIN_ERRORS = (Unauthorized, Forbidden)

_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "SPDCI envelope: signature, header, message (see the SPDCI "
                    "Social Registry spec, OpenAPI 3.0.3, served at "
                    f"{BASE_PATH}/openapi.yaml).",
                    "required": ["header", "message"],
                    "properties": {
                        "signature": {"type": "string"},
                        "header": {"type": "object"},
                        "message": {"type": "object"},
                    },
                }
            }
        },
    }
}
# The spec's answers (its full schemas are in the spec file served below): an ``Ack``/``ERR``
# ``Response``, an ``HttpErrorResponse``, a signed envelope.
_ACK_STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {
            "type": "object",
            "required": ["ack_status", "timestamp", "correlation_id"],
            "properties": {
                "ack_status": {"type": "string", "enum": ["ACK", "ERR"]},
                "timestamp": {"type": "string"},
                "correlation_id": {"type": "string"},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        }
    },
}
_HTTP_ERROR_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        }
    },
}
_SIGNED_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["signature", "header", "message"],
    "properties": {
        "signature": {"type": "string"},
        "header": {"type": "object"},
        "message": {"type": "object"},
    },
}


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_HTTP_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _answer("`ack_status: ERR` with an `err.*` code", _ACK_STATUS),
    401: _answer("HttpErrorResponse `err.request.unauthorized`", _HTTP_ERROR_RESPONSE),
    403: _answer("HttpErrorResponse `err.request.forbidden`", _HTTP_ERROR_RESPONSE),
    429: _answer(
        "`err.request.too_many_requests`: over the sender's rate limit (Retry-After)", _ACK_STATUS
    ),
    503: _answer(
        "`err.service.unavailable`: the database cannot be reached (Retry-After)", _ACK_STATUS
    ),
    504: _answer("`err.request.timeout`: the search ran past its time limit", _ACK_STATUS),
}
_ASYNC = {
    **_HTTP_ERRORS,
    202: _answer("`ack_status: ACK`; the answer is called back", _ACK_STATUS),
}
_SYNC = {**_HTTP_ERRORS, 200: _answer("signed envelope with the answer", _SIGNED_ENVELOPE)}
# The routes check the token themselves (answering in the spec's shapes above); this declares it.
_TOKEN = [bearer_token_declared(READ_SCOPE)]


class _YamlResponse(PlainTextResponse):
    media_type = "application/yaml"


def _rejected(
    received: Received, transaction: DciTransaction, answer: dict[str, Any]
) -> dict[str, Any]:
    """The answer to a message rejected at header level (the reason travels in the header)."""
    message = {
        "transaction_id": received.transaction_id,
        "correlation_id": str(transaction.id),
        **answer,
    }
    transactions.complete(transaction, status="rjct", response=message)
    return message


async def _reject_later(
    session: AsyncSession,
    received: Received,
    transaction: DciTransaction,
    *,
    action: str,
    answer: dict[str, Any],
) -> JSONResponse:
    """Acknowledge an async message rejected at header level; the rejection is called back."""
    message = _rejected(received, transaction, answer)
    return await _call_back(session, received, action=action, message=message)


async def _call_back(
    session: AsyncSession,
    received: Received,
    *,
    action: str,
    message: dict[str, Any],
    rejection: HeaderRejection | None = None,
) -> JSONResponse:
    """Queue the answer to the sender's callback URL (same transaction) and acknowledge.

    The callback's header carries the message's own header-level rejection (nothing in it was
    done), else ``rejection`` (``rjct.errors.too_many``: the items were answered)."""
    assert received.callback_uri is not None  # receive() demands one on async routes
    header = None
    if received.rejection is not None:
        header = {**envelopes.rejection_fields(received.rejection), "completed_count": 0}
    elif rejection is not None:
        header = envelopes.rejection_fields(rejection)
    await enqueue_callback(
        session,
        sender_id=received.sender_id,
        url=received.callback_uri,
        action=action,
        message=message,
        transaction_id=received.transaction_id,
        correlation_id=message["correlation_id"],
        header=header,
    )
    return ack(message["correlation_id"])


@router.post(
    "/registry/sync/search",
    summary="Search the registry and answer at once (on-search envelope)",
    responses=_SYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def sync_search(request: Request, session: SessionDep, signer: Signer) -> JSONResponse:
    """Search request (one or more items) answered in the response, signed by the registry."""
    received = await receive(
        request, session, action="search", items_key="search_request", is_async=False
    )
    if isinstance(received, JSONResponse):
        return received
    transaction = await start_transaction(
        session, received, txn_type="search", items_key="search_request"
    )
    if received.rejection is not None:
        message = _rejected(received, transaction, {"search_response": []})
        return sync_answer(signer, received, action="on-search", message=message, count=0)
    settings = settings_of(request)
    # A search past dci_search_timeout_ms raises here: the request rolls back and
    # registry.dci.errors answers 504 err.request.timeout.
    message = await service.answer_search(
        session,
        caller=received.caller,
        message=received.message,
        sender_id=received.sender_id,
        correlation_id=str(transaction.id),
        timeout_ms=settings.dci_search_timeout_ms,
    )
    items = message["search_response"]
    rejection = transactions.complete_answered(
        transaction, response=message, items=items, max_rejected=settings.dci_max_rejected_items
    )
    return sync_answer(
        signer, received, action="on-search", message=message, count=len(items), rejection=rejection
    )


@router.post(
    "/registry/search",
    summary="Search the registry; the answer is called back to on-search",
    status_code=202,
    responses=_ASYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def search(request: Request, session: SessionDep) -> JSONResponse:
    """Acknowledge a search; a job answers it to the sender's `sender_uri`."""
    received = await receive(
        request, session, action="search", items_key="search_request", is_async=True
    )
    if isinstance(received, JSONResponse):
        return received
    transaction = await start_transaction(
        session, received, txn_type="search", items_key="search_request"
    )
    if received.rejection is not None:
        return await _reject_later(
            session, received, transaction, action="on-search", answer={"search_response": []}
        )
    await schedule_search(session, transaction)
    return ack(str(transaction.id))


@router.post(
    "/registry/subscribe",
    summary="Subscribe to registry events; codes are called back to on-subscribe",
    status_code=202,
    responses=_ASYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def subscribe(request: Request, session: SessionDep) -> JSONResponse:
    """Acknowledge subscriptions; their codes (or rejections) go to `sender_uri`."""
    received = await receive(
        request, session, action="subscribe", items_key="subscribe_request", is_async=True
    )
    if isinstance(received, JSONResponse):
        return received
    transaction = await start_transaction(
        session, received, txn_type="subscribe", items_key="subscribe_request"
    )
    if received.rejection is not None:
        return await _reject_later(
            session, received, transaction, action="on-subscribe", answer={"subscribe_response": []}
        )
    assert received.callback_uri is not None
    message = await service.subscribe(
        session,
        caller=received.caller,
        message=received.message,
        sender_id=received.sender_id,
        callback_uri=received.callback_uri,
        correlation_id=str(transaction.id),
    )
    rejection = transactions.complete_answered(
        transaction,
        response=message,
        items=message["subscribe_response"],
        max_rejected=settings_of(request).dci_max_rejected_items,
    )
    return await _call_back(
        session, received, action="on-subscribe", message=message, rejection=rejection
    )


@router.post(
    "/registry/unsubscribe",
    summary="End subscriptions by code; the result is called back to on-unsubscribe",
    status_code=202,
    responses=_ASYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def unsubscribe(request: Request, session: SessionDep) -> JSONResponse:
    """Acknowledge; `subscription_codes` (or the published `sunscription_codes`) end."""
    received = await receive(
        request,
        session,
        action="unsubscribe",
        items_key="subscription_codes",
        is_async=True,
        items_are_requests=False,
    )
    if isinstance(received, JSONResponse):
        return received
    codes = received.message["subscription_codes"]
    if not all(isinstance(code, str) for code in codes) or len(codes) > _MAX_CODES:
        return err(
            EnvelopeError("err.request.bad", f"subscription_codes: up to {_MAX_CODES} strings")
        )
    transaction = await start_transaction(session, received, txn_type="unsubscribe", items_key=None)
    if received.rejection is not None:
        answer = {"timestamp": envelopes.now_iso(), "status": "rjct", "subscription_status": []}
        return await _reject_later(
            session, received, transaction, action="on-unsubscribe", answer=answer
        )
    message = await service.unsubscribe(
        session,
        message=received.message,
        sender=received.sender,
        correlation_id=str(transaction.id),
    )
    transactions.complete(transaction, status=message["status"], response=message)
    return await _call_back(session, received, action="on-unsubscribe", message=message)


async def _txn_status(
    request: Request, session: AsyncSession, *, is_async: bool
) -> tuple[Received, dict[str, Any]] | JSONResponse:
    received = await receive(
        request, session, action="txn-status", items_key=None, is_async=is_async
    )
    if isinstance(received, JSONResponse):
        return received
    if not isinstance(received.message.get("txnstatus_request"), dict):
        return err(EnvelopeError("err.request.bad", "message.txnstatus_request is required"))
    transaction = await start_transaction(session, received, txn_type="txn-status", items_key=None)
    correlation_id = str(transaction.id)
    if received.rejection is not None:
        empty_search = {
            "transaction_id": received.transaction_id,
            "correlation_id": correlation_id,
            "search_response": [],
        }
        answer = {"txnstatus_response": {"txn_type": "search", "txn_status": empty_search}}
        return received, _rejected(received, transaction, answer)
    try:
        message = await service.txn_status(
            session,
            message=received.message,
            sender_id=received.sender_id,
            correlation_id=correlation_id,
        )
    except service.TxnStatusUnusable as exc:
        return err(EnvelopeError("err.request.bad", str(exc)))
    transactions.complete(transaction, status="succ", response=message)
    return received, message


@router.post(
    "/registry/sync/txn/status",
    summary="State of earlier searches or subscriptions, answered at once",
    responses=_SYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def sync_txn_status(request: Request, session: SessionDep, signer: Signer) -> JSONResponse:
    """Transaction status by transaction_id, correlation_id, reference ids or codes."""
    outcome = await _txn_status(request, session, is_async=False)
    if isinstance(outcome, JSONResponse):
        return outcome
    received, message = outcome
    count = len(message["txnstatus_response"]["txn_status"]["search_response"])
    return sync_answer(signer, received, action="txn-on-status", message=message, count=count)


@router.post(
    "/registry/txn/status",
    summary="State of earlier searches or subscriptions, called back to txn/on-status",
    status_code=202,
    responses=_ASYNC,
    openapi_extra=_ENVELOPE_BODY,
    dependencies=_TOKEN,
)
async def txn_status(request: Request, session: SessionDep) -> JSONResponse:
    """Acknowledge; the status goes to `sender_uri` as `txn-on-status`."""
    outcome = await _txn_status(request, session, is_async=True)
    if isinstance(outcome, JSONResponse):
        return outcome
    received, message = outcome
    return await _call_back(session, received, action="txn-on-status", message=message)


@router.get(
    "/openapi.yaml",
    summary="The SPDCI Social Registry specification this API implements (OpenAPI 3.0.3)",
    response_class=_YamlResponse,
    responses={
        200: {
            "description": "The SPDCI Social Registry OpenAPI 3.0.3 document, as YAML",
            "content": {"application/yaml": {"schema": {"type": "object"}}},
        }
    },
)
async def specification() -> _YamlResponse:
    """The spec file as published (Apache-2.0, see its SOURCE.md), for client generators."""
    return _YamlResponse(spec.text())


@router.get(
    "/.well-known/jwks.json",
    summary="The registry's public signing key (JWKS, Ed25519)",
)
async def jwks(signer: Signer) -> dict[str, Any]:
    """Verify the registry's answers and callbacks with this key (kid = kidId of signatures)."""
    return signer.jwks()


# --- senders (the registry administrator's) ------------------------------------------------


@senders_router.post(
    "",
    status_code=201,
    response_model=senders.SenderRead,
    responses=problem_responses(*_ADMIN_ERRORS, senders.SenderExists),
    summary="Register an SPDCI sender",
)
async def create_sender(
    sender_in: senders.SenderCreate, session: SessionDep, _admin: Admin
) -> DciSender:
    """A partner system: its agency, Ed25519 public keys by key id, callback URL prefixes."""
    return await senders.create_sender(session, sender_in)


@senders_router.get(
    "", response_model=list[senders.SenderRead], responses=problem_responses(*_ADMIN_ERRORS)
)
async def list_senders(session: SessionDep, _admin: Admin) -> list[DciSender]:
    """Every registered sender."""
    return await senders.list_senders(session)


@senders_router.get(
    "/{sender_id}",
    response_model=senders.SenderRead,
    responses=problem_responses(*_ADMIN_ERRORS, senders.SenderNotFound),
)
async def get_sender(sender_id: str, session: SessionDep, _admin: Admin) -> DciSender:
    """One sender."""
    return await senders.get_sender_or_raise(session, sender_id)


@senders_router.patch(
    "/{sender_id}",
    response_model=senders.SenderRead,
    responses=problem_responses(*_ADMIN_ERRORS, senders.SenderNotFound),
)
async def update_sender(
    sender_id: str, sender_in: senders.SenderUpdate, session: SessionDep, _admin: Admin
) -> DciSender:
    """Rotate keys, change the callback allow-list, or deactivate a sender."""
    return await senders.update_sender(session, sender_id, sender_in)
