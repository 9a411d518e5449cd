"""Programs use cases; they take the caller's session and never commit."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from programs.errors import PersonFactNotFound
from programs.facts.schemas import PersonFactRead
from programs.models import PersonFact, ReferralFact, audit_log
from shared.audit import record_read
from shared.auth import Caller

__all__ = ["apply_person_fact", "list_person_facts", "read_person_fact", "record_referral"]


async def read_person_fact(
    session: AsyncSession, *, person_id: uuid.UUID, caller: Caller, purpose: str
) -> PersonFactRead:
    facts, _ = await list_person_facts(
        session,
        caller=caller,
        purpose=purpose,
        region_prefix=None,
        after=None,
        limit=1,
        person_id=person_id,
    )
    if not facts:
        raise PersonFactNotFound()
    return facts[0]


async def list_person_facts(
    session: AsyncSession,
    *,
    caller: Caller,
    purpose: str,
    region_prefix: str | None,
    after: uuid.UUID | None,
    limit: int,
    person_id: uuid.UUID | None = None,
) -> tuple[list[PersonFactRead], uuid.UUID | None]:
    """Keyset page of facts inside the caller's regions, ordered by person id."""
    referrals = (
        select(func.count())
        .where(ReferralFact.person_id == PersonFact.person_id)
        .correlate(PersonFact)
        .scalar_subquery()
    )
    query = (
        select(PersonFact, referrals.label("referral_count"))
        .order_by(PersonFact.person_id)
        .limit(limit + 1)
    )
    if not caller.is_national:
        query = query.where(or_(*(PersonFact.village_code.startswith(r) for r in caller.regions)))
    if region_prefix:
        query = query.where(PersonFact.village_code.startswith(region_prefix))
    if after is not None:
        query = query.where(PersonFact.person_id > after)
    if person_id is not None:
        query = query.where(PersonFact.person_id == person_id)
    rows = (await session.execute(query)).all()
    visible = [
        PersonFactRead.model_validate(fact).model_copy(update={"referral_count": count})
        for fact, count in rows[:limit]
    ]
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        resource_type="person_fact",
        resource_ids=[str(f.person_id) for f in visible],
    )
    next_cursor = rows[limit - 1][0].person_id if len(rows) > limit else None
    return visible, next_cursor


async def apply_person_fact(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    village_code: str,
    birth_date: object,
    sex: str,
    status: str,
    version: int | None,
    as_of: datetime,
) -> None:
    """Upsert a registry fact unless a newer one is already applied (out-of-order safe).

    Newer means a higher registry row ``version``: an event at or below the stored version
    changes nothing, whatever its time says (the registry's clock and the relay's are not
    ours to compare). The test is in the upsert's WHERE, so it holds between concurrent
    consumers too. An event without a version (an older producer) is ordered by ``as_of``
    among facts that have none either, and never overwrites a versioned fact; a versioned
    event always replaces an unversioned fact.
    """
    values = {
        "person_id": person_id,
        "village_code": village_code,
        "birth_date": birth_date,
        "sex": sex,
        "status": status,
        "version": version,
        "as_of": as_of,
    }
    statement = insert(PersonFact).values(values)
    excluded = statement.excluded
    newer = (
        or_(PersonFact.version.is_(None), PersonFact.version < excluded.version)
        if version is not None
        else and_(PersonFact.version.is_(None), PersonFact.as_of <= excluded.as_of)
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[PersonFact.person_id],
            set_={k: excluded[k] for k in values if k != "person_id"},
            where=newer,
        )
    )


async def record_referral(
    session: AsyncSession,
    *,
    referral_id: uuid.UUID,
    person_id: uuid.UUID,
    service_type: str,
    region_code: str,
    referred_at: datetime,
) -> None:
    await session.execute(
        insert(ReferralFact)
        .values(
            referral_id=referral_id,
            person_id=person_id,
            service_type=service_type,
            region_code=region_code,
            referred_at=referred_at,
        )
        .on_conflict_do_nothing()
    )
