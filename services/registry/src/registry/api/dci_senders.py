"""Registering SPDCI senders (scope ``registry:admin``): who may call ``/spdci/v1.0.0``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from registry.dci import senders
from registry.dci.models import DciSender
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/dci/senders", tags=["SPDCI senders"])
Admin = Annotated[Caller, Depends(require_scope("registry:admin"))]
_ADMIN_ERRORS = (Unauthorized, Forbidden)


@router.post(
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


@router.get(
    "", response_model=list[senders.SenderRead], responses=problem_responses(*_ADMIN_ERRORS)
)
async def list_senders(session: SessionDep, _admin: Admin) -> list[DciSender]:
    """Every registered sender."""
    return await senders.list_senders(session)


@router.get(
    "/{sender_id}",
    response_model=senders.SenderRead,
    responses=problem_responses(*_ADMIN_ERRORS, senders.SenderNotFound),
)
async def get_sender(sender_id: str, session: SessionDep, _admin: Admin) -> DciSender:
    """One sender."""
    return await senders.get_sender_or_raise(session, sender_id)


@router.patch(
    "/{sender_id}",
    response_model=senders.SenderRead,
    responses=problem_responses(*_ADMIN_ERRORS, senders.SenderNotFound),
)
async def update_sender(
    sender_id: str, sender_in: senders.SenderUpdate, session: SessionDep, _admin: Admin
) -> DciSender:
    """Rotate keys, change the callback allow-list, or deactivate a sender."""
    return await senders.update_sender(session, sender_id, sender_in)
