"""The DCI worker: answers acknowledged async searches (their callbacks are jobs, see
:mod:`registry.dci.delivery`).

It runs where the outbox relay runs (``serve`` or ``worker``), as a background loop of the
service runtime. Several workers may run: searches are claimed with ``FOR UPDATE SKIP LOCKED``,
so each is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.dci import delivery, service, transactions
from registry.dci import envelope as envelopes
from registry.dci.errors import is_statement_timeout
from registry.dci.signature import MAX_VALIDITY_SECONDS
from registry.settings import RegistrySettings
from shared.db import session_scope
from shared.service import BackgroundWorker, ServiceRuntime

__all__ = ["answer_pending_searches", "dci_worker"]

log = logging.getLogger("registry.dci.worker")
_SEARCHES_PER_ROUND = 5
_HOUSEKEEPING_EVERY_SECONDS = 600.0
# Twice the longest signature validity: a replayed message id is still known while it could pass.
_KEEP_MESSAGE_IDS = timedelta(seconds=2 * MAX_VALIDITY_SECONDS)


async def answer_pending_searches(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: RegistrySettings,
    *,
    limit: int = _SEARCHES_PER_ROUND,
) -> int:
    """Answer acknowledged searches and queue their on-search callbacks, in one transaction
    each batch; a search that fails is answered ``rjct`` rather than retried forever.

    A search past ``dci_search_timeout_ms`` is rolled back whole (its savepoint: no records
    read, nothing audited) and called back with header ``status: rjct`` and every item
    ``rjct``, each message starting ``err.request.timeout``: the spec has no ``rjct.*`` code for
    a timeout, and that is the code the same search gets when sent to ``sync/search``. The
    client sends it again (narrower, or in smaller pages) under a new message id.
    """
    async with session_scope(sessionmaker) as session:
        pending = await transactions.claim_pending_searches(session, limit=limit)
        for transaction in pending:
            correlation_id = str(transaction.id)
            header = None
            try:
                async with session.begin_nested():
                    response = await service.answer_search(
                        session,
                        caller=transactions.caller_from_json(transaction.caller),
                        message=transaction.request,
                        sender_id=transaction.sender_id,
                        correlation_id=correlation_id,
                        timeout_ms=settings.dci_search_timeout_ms,
                    )
                rejection = transactions.complete_answered(
                    transaction,
                    response=response,
                    items=response["search_response"],
                    max_rejected=settings.dci_max_rejected_items,
                )
                if rejection is not None:
                    header = envelopes.rejection_fields(rejection)
            except Exception as exc:
                if is_statement_timeout(exc):
                    reason = (
                        f"err.request.timeout: the search ran longer than "
                        f"{settings.dci_search_timeout_ms} ms and was stopped; nothing of it "
                        "was kept: narrow the query or ask for smaller pages"
                    )
                    log.warning(
                        "registry.dci.search_timed_out", extra={"correlation_id": correlation_id}
                    )
                else:
                    reason = "the registry could not process this search"
                    log.exception(
                        "registry.dci.search_failed", extra={"correlation_id": correlation_id}
                    )
                response = {
                    "transaction_id": transaction.transaction_id,
                    "correlation_id": correlation_id,
                    "search_response": [
                        {
                            "reference_id": reference_id,
                            "timestamp": envelopes.now_iso(),
                            "status": "rjct",
                            "status_reason_message": reason,
                        }
                        for reference_id in transaction.reference_ids
                    ],
                }
                header = {"status": "rjct", "status_reason_message": reason}
                transactions.complete(transaction, status="rjct", response=response)
            assert transaction.callback_uri is not None  # async searches always have one
            await delivery.enqueue_callback(
                session,
                sender_id=transaction.sender_id,
                url=transaction.callback_uri,
                action="on-search",
                message=response,
                transaction_id=transaction.transaction_id,
                correlation_id=correlation_id,
                header=header,
            )
    return len(pending)


def dci_worker(settings: RegistrySettings) -> BackgroundWorker:
    async def run(runtime: ServiceRuntime) -> None:
        next_housekeeping = time.monotonic()
        while not runtime.stopping.is_set():
            answered = 0
            try:
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + _HOUSEKEEPING_EVERY_SECONDS
                    async with session_scope(runtime.sessionmaker) as session:
                        await transactions.forget_old_messages(
                            session, older_than=_KEEP_MESSAGE_IDS
                        )
                answered = await answer_pending_searches(runtime.sessionmaker, settings)
            except Exception:
                log.exception("registry.dci.worker_round_failed")
            if answered:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    runtime.stopping.wait(), timeout=settings.dci_worker_poll_seconds
                )

    return run
