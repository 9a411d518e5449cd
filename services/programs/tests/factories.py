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
    """``count`` person facts, as the registry's events would have left them: each a girl of
    twelve heading a family card of her own in decile 1 with an unfit house, whom every seeded
    programme but Koperasi (adults) admits."""
    people = [uuid.uuid4() for _ in range(count)]
    cards = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        await conn.executemany(
            "INSERT INTO household_fact (household_id, village_code, decile, status, house_fit, "
            "floor, wall, roof, water, sanitation, electricity, version, as_of) "
            "VALUES ($1, $2, 1, 'active', false, 'earth', 'bamboo', 'zinc', 'unprotected', "
            "'none', 'none', 1, $3)",
            [(card, village, now) for card in cards],
        )
        await conn.executemany(
            "INSERT INTO person_fact (person_id, household_id, village_code, birth_date, sex, "
            "status, relationship, as_of) VALUES ($1, $2, $3, $4, 'F', 'alive', 'head', $5)",
            [
                (person_id, card, village, date(2014, 5, 1), now)
                for person_id, card in zip(people, cards, strict=True)
            ],
        )
    finally:
        await conn.close()
    return [str(person_id) for person_id in people]


async def known_person(settings: ProgramsSettings, village: str = KOTA_BENGKULU_VILLAGE) -> str:
    """One fact, as the registry's event would have left it."""
    (person_id,) = await known_people(settings, 1, village)
    return person_id
