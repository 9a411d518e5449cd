"""The DCI package's scheduled work: answering acknowledged async searches (a job each, kind
:data:`SEARCH_JOB`, scheduled by the ``registry/search`` route in the transaction that
acknowledges the search), and forgetting old message ids. (Callbacks are jobs too:
:mod:`registry.dci.delivery`.)

A search's job runs where the outbox relay runs (``serve`` or ``worker``), on the shared job
runner: claimed with ``FOR UPDATE SKIP LOCKED`` by any number of workers, its answer, its
audit rows and its on-search callback commit with the job, so each search is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import delivery, service, transactions
from registry.dci import envelope as envelopes
from registry.dci.errors import is_statement_timeout
from registry.dci.models import DciTransaction
from registry.dci.signature import MAX_VALIDITY_SECONDS
from registry.settings import RegistrySettings
from shared import jobs
from shared.db import session_scope
from shared.jobs import Job, JobKind
from shared.service import BackgroundWorker, ServiceRuntime

__all__ = ["SEARCH_JOB", "dci_housekeeping", "schedule_search", "search_job"]

log = logging.getLogger("registry.dci.scheduled")
SEARCH_JOB = "dci.search"
_HOUSEKEEPING_EVERY_SECONDS = 600.0
# Twice the longest signature validity: a replayed message id is still known while it could pass.
_KEEP_MESSAGE_IDS = timedelta(seconds=2 * MAX_VALIDITY_SECONDS)


async def schedule_search(session: AsyncSession, transaction: DciTransaction) -> None:
    """Mark an acknowledged search pending and schedule its answer, in the caller's
    transaction: the search is answered exactly when its ACK committed."""
    transaction.status = "pdng"
    await jobs.schedule(session, kind=SEARCH_JOB, key=str(transaction.id))


def search_job(settings: RegistrySettings) -> JobKind:
    """How the job runner answers one acknowledged search. A search that fails is answered
    ``rjct`` rather than retried: the client sends it again under a new message id."""

    async def run(session: AsyncSession, job: Job) -> None:
        transaction = await session.get(DciTransaction, uuid.UUID(job.key), with_for_update=True)
        if transaction is None or transaction.status != "pdng":
            return  # answered by an earlier attempt
        await _answer(session, transaction, settings)

    # One attempt answers (an answer is rjct at worst); a second runs only when the worker of
    # the first died mid-way, and answers it then.
    return JobKind(run, max_attempts=3, lease_seconds=settings.dci_search_timeout_ms / 1000 + 60)


async def _answer(
    session: AsyncSession, transaction: DciTransaction, settings: RegistrySettings
) -> None:
    """Answer an acknowledged search and queue its on-search callback.

    A search past ``dci_search_timeout_ms`` is rolled back whole (its savepoint: no records
    read, nothing audited) and called back with header ``status: rjct`` and every item
    ``rjct``, each message starting ``err.request.timeout``: the spec has no ``rjct.*`` code for
    a timeout, and that is the code the same search gets when sent to ``sync/search``. The
    client sends it again (narrower, or in smaller pages) under a new message id.
    """
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
            log.warning("registry.dci.search_timed_out", extra={"correlation_id": correlation_id})
        else:
            reason = "the registry could not process this search"
            log.exception("registry.dci.search_failed", extra={"correlation_id": correlation_id})
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


def dci_housekeeping() -> BackgroundWorker:
    """Forgets message ids too old to be replayed, every ten minutes (it runs where the relay
    runs; a sweep over one table, not work a change asks for, so not a job)."""

    async def run(runtime: ServiceRuntime) -> None:
        while not runtime.stopping.is_set():
            try:
                async with session_scope(runtime.sessionmaker) as session:
                    await transactions.forget_old_messages(session, older_than=_KEEP_MESSAGE_IDS)
            except Exception:
                log.exception("registry.dci.housekeeping_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.stopping.wait(), timeout=_HOUSEKEEPING_EVERY_SECONDS)

    return run
