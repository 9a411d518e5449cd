"""Region use cases: the read queries of the regions API (they take the session, never commit)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import RegionNotFound
from registry.models import Region

__all__ = ["list_children", "list_provinces", "read_region"]


async def read_region(session: AsyncSession, *, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise RegionNotFound(f"no region has the code {code}")
    return region


async def list_provinces(session: AsyncSession) -> Sequence[Region]:
    result = await session.scalars(select(Region).where(Region.level == 1).order_by(Region.code))
    return result.all()


async def list_children(
    session: AsyncSession, *, parent: Region, limit: int, after: str | None = None
) -> tuple[Sequence[Region], str | None]:
    """One page of ``parent``'s children in code order and the cursor of the next page.

    Keyset pagination: the cursor is the last code served, so a page costs one index range scan
    however deep the caller pages, and a code is never served twice or skipped.
    """
    query = select(Region).where(Region.parent_code == parent.code)
    if after is not None:
        query = query.where(Region.code > after)
    rows = (await session.scalars(query.order_by(Region.code).limit(limit + 1))).all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].code
    return rows, None
