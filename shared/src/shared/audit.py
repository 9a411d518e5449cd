"""Audit log of personal-data reads, kept by the service that served the read.

Each row says who read which record, for which agency and stated purpose, and when (UU 27/2022
Art. 31-32: processing must be recorded and a person may ask who read their data). The table is
append-only: a trigger refuses UPDATE and DELETE, so the application cannot rewrite history.

Every route that reads personal data takes the caller's purpose as the required query parameter
:data:`Purpose` (no default: a purpose nobody stated is not a purpose). A use case that reads one
record by id does it with :func:`read_in_region`: load it, hide it when it lies outside the
caller's regions, audit the read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Query
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Table,
    Text,
    func,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.observability import current_trace_id

__all__ = [
    "AUDIT_TABLE",
    "PURPOSE_LENGTH",
    "Purpose",
    "append_only_trigger_sql",
    "audit_table",
    "read_in_region",
    "record_read",
]

RecordT = TypeVar("RecordT")

AUDIT_TABLE = "audit_log"
PURPOSE_LENGTH = range(3, 201)  # 3 to 200 characters
Purpose = Annotated[
    str,
    Query(
        min_length=PURPOSE_LENGTH.start,
        max_length=PURPOSE_LENGTH.stop - 1,
        description="Why you read this personal data; written to the audit log with your "
        "identity and agency.",
        examples=["PBI-JK eligibility check"],
    ),
]


def audit_table(metadata: MetaData) -> Table:
    return Table(
        AUDIT_TABLE,
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("subject", Text, nullable=False),
        Column("agency", Text, nullable=False),
        Column("purpose", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("resource_type", Text, nullable=False),
        Column("resource_id", Text, nullable=False),
        Column("trace_id", Text),
        Index("ix_audit_log_resource", "resource_type", "resource_id", "occurred_at"),
        Index("ix_audit_log_agency_occurred_at", "agency", "occurred_at"),
    )


def append_only_trigger_sql() -> list[str]:
    return [
        f"""
        CREATE OR REPLACE FUNCTION {AUDIT_TABLE}_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{AUDIT_TABLE} is append-only';
        END $$
        """,
        f"""
        CREATE TRIGGER {AUDIT_TABLE}_append_only BEFORE UPDATE OR DELETE ON {AUDIT_TABLE}
        FOR EACH ROW EXECUTE FUNCTION {AUDIT_TABLE}_append_only()
        """,
    ]


async def record_read(
    session: AsyncSession,
    table: Table,
    *,
    caller: Caller,
    purpose: str,
    resource_type: str,
    resource_ids: list[str],
    action: str = "read",
) -> None:
    """Write one audit row per record read, in the request's own transaction."""
    if not resource_ids:
        return
    trace_id = current_trace_id()
    await session.execute(
        insert(table),
        [
            {
                "subject": caller.subject,
                "agency": caller.agency,
                "purpose": purpose,
                "action": action,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "trace_id": trace_id,
            }
            for resource_id in resource_ids
        ],
    )


async def read_in_region(
    session: AsyncSession,
    table: Table,
    model: type[RecordT],
    record_id: uuid.UUID,
    *,
    caller: Caller,
    purpose: str,
    region_of: Callable[[RecordT], str],
    resource_type: str,
    not_found: Callable[[], Exception],
) -> RecordT:
    """The ``model`` row ``record_id``, its read audited with ``purpose``; ``not_found()`` is
    raised when there is none *or* it lies outside the caller's regions (``region_of`` gives its
    region code), so a record outside reads exactly like one that does not exist: no existence
    oracle, and no audit row of a read that did not happen."""
    record = await session.get(model, record_id)
    if record is None or not caller.may_see(region_of(record)):
        raise not_found()
    await record_read(
        session,
        table,
        caller=caller,
        purpose=purpose,
        resource_type=resource_type,
        resource_ids=[str(record_id)],
    )
    return record
