"""Registry events as the registry's relay puts them on its topics, built from deterministic ids,
and what the programs consumer made of them: the builders of the read-model tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from programs.settings import ProgramsSettings
from shared.envelope import CloudEvent
from shared.testing import fetch, sequence_number, stable_uuid

from .factories import KOTA_BENGKULU_VILLAGE

PERSON_TOPIC = "registry.person.v1"
HOUSEHOLD_TOPIC = "registry.household.v1"
REGISTERED = "registry.household.registered.v1"
UPDATED = "registry.household.updated.v1"
DECILE_CHANGED = "registry.household.decile_changed.v1"
SPLIT = "registry.household.split.v1"
MERGED = "registry.household.merged.v1"
AS_OF = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

# A family card of Kota Bengkulu as the registry's generator makes the poorest ones.
POOR_HOUSE: dict[str, Any] = {
    "decile": 2,
    "house_fit": False,
    "floor": "earth",
    "wall": "bamboo",
    "roof": "zinc",
    "water": "protected_well",
    "sanitation": "shared",
    "electricity": "pln_450",
    "status": "active",
}
# What each household event type carries beyond the snapshot (not read by programs).
_EXTRA: dict[str, dict[str, Any]] = {
    UPDATED: {"changed": ["house_fit"]},
    DECILE_CHANGED: {"previous_decile": 3},
    SPLIT: {"new_household_id": "e1c9f7a3-2b60-4d18-b5e4-7f3a9c0d2e61", "person_ids": []},
    MERGED: {"merged_household_id": "b7e4a2d0-91c3-4f5e-8a27-6d1c0e9f3a42", "person_ids": []},
}


def _event_id() -> str:
    return str(stable_uuid(f"programs/registry-event/{sequence_number()}"))


def household_event(
    household_id: uuid.UUID,
    *,
    type: str = REGISTERED,
    version: int = 1,
    time: datetime = AS_OF,
    **data: Any,
) -> CloudEvent:
    payload = {
        "household_id": str(household_id),
        "village_code": KOTA_BENGKULU_VILLAGE,
        **POOR_HOUSE,
        "version": version,
        **_EXTRA.get(type, {}),
        **data,
    }
    return CloudEvent(
        id=_event_id(),
        source="/simpul/registry",
        type=type,
        time=time,
        subject=str(household_id),
        data=payload,
    )


def person_event(
    person_id: uuid.UUID,
    *,
    household_id: uuid.UUID | None,
    type: str = "registry.person.registered.v1",
    version: int = 1,
    time: datetime = AS_OF,
    **data: Any,
) -> CloudEvent:
    payload = {
        "person_id": str(person_id),
        "household_id": str(household_id) if household_id else None,
        "village_code": KOTA_BENGKULU_VILLAGE,
        "birth_date": "1987-03-14",
        "sex": "F",
        "status": "alive",
        "relationship": "head",
        "disability": "none",
        "version": version,
        **data,
    }
    return CloudEvent(
        id=_event_id(),
        source="/simpul/registry",
        type=type,
        time=time,
        subject=str(person_id),
        data=payload,
    )


async def handled(settings: ProgramsSettings, *events: CloudEvent) -> bool:
    """Whether the programs consumer has handled (or parked) every one of ``events``."""
    rows = await fetch(
        settings,
        "SELECT event_id FROM inbox_event WHERE event_id = ANY($1::text[])",
        [e.id for e in events],
    )
    return len(rows) == len(events)


async def household_row(settings: ProgramsSettings, household_id: uuid.UUID) -> asyncpg.Record:
    [row] = await fetch(
        settings, "SELECT * FROM household_fact WHERE household_id = $1", household_id
    )
    return row


async def person_row(settings: ProgramsSettings, person_id: uuid.UUID) -> asyncpg.Record:
    [row] = await fetch(settings, "SELECT * FROM person_fact WHERE person_id = $1", person_id)
    return row
