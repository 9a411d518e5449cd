"""Builders of programs test data: person facts as the registry's events would leave them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import asyncpg

from programs.settings import ProgramsSettings
from shared.db import sync_url

KOTA_BENGKULU_VILLAGE = "1771011001"
BENGKULU_SELATAN_VILLAGE = "1701012001"


async def known_people(
    settings: ProgramsSettings, count: int, village: str = KOTA_BENGKULU_VILLAGE
) -> list[str]:
    """``count`` person facts, as the registry's events would have left them."""
    people = [uuid.uuid4() for _ in range(count)]
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        await conn.executemany(
            "INSERT INTO person_fact (person_id, village_code, birth_date, sex, status, as_of) "
            "VALUES ($1, $2, $3, 'F', 'alive', $4)",
            [(person_id, village, date(2014, 5, 1), datetime.now(UTC)) for person_id in people],
        )
    finally:
        await conn.close()
    return [str(person_id) for person_id in people]


async def known_person(settings: ProgramsSettings, village: str = KOTA_BENGKULU_VILLAGE) -> str:
    """One fact, as the registry's event would have left it."""
    (person_id,) = await known_people(settings, 1, village)
    return person_id
