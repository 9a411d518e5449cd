"""Events the registry publishes. One topic per aggregate and version; the key is the aggregate
id, so one person's (or household's) events stay in order. ``version`` is the row version the
event reflects: a consumer that sees an older version than it holds can ignore it.

Payloads carry the registry's ids, never the NIK, the KK number or the name: consumers that need
more ask through the audited REST lookups.

Which events a change emits (each under the key of the aggregate it concerns, all in the
change's own transaction; a change that changes nothing emits nothing):

* person registered / updated / died / moved: one ``registry.person.*`` event on the person.
* household registered / updated: one event on the household; a decile change is its own
  ``decile_changed`` event (with ``previous_decile``), so a PATCH of both emits both, carrying the
  same row version.
* split: ``household.registered`` for the new card, ``person.moved`` for every member who left
  (``from_household_id`` = the old card), then ``household.split`` on the old card.
* merge: ``person.moved`` for every living member of the absorbed card, ``household.updated``
  (``changed: ["status"]``, status ``dissolved``) on the absorbed card, then ``household.merged``
  on the card that remains.

* household move (the whole family): ``person.moved`` for every living member whose village
  changes (``from_household_id`` = the same card), then ``household.updated`` on the card
  (``changed`` names ``village_code``, ``address``, ``kk``).

So a consumer that follows only person events (programs' eligibility facts) sees every change of
household membership, and one that follows households sees every card appear and end.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/registry"
PERSON_TOPIC = "registry.person.v1"
HOUSEHOLD_TOPIC = "registry.household.v1"

PERSON_REGISTERED = "registry.person.registered.v1"
PERSON_UPDATED = "registry.person.updated.v1"
PERSON_DIED = "registry.person.died.v1"
PERSON_MOVED = "registry.person.moved.v1"
HOUSEHOLD_REGISTERED = "registry.household.registered.v1"
HOUSEHOLD_UPDATED = "registry.household.updated.v1"
HOUSEHOLD_DECILE_CHANGED = "registry.household.decile_changed.v1"
HOUSEHOLD_SPLIT = "registry.household.split.v1"
HOUSEHOLD_MERGED = "registry.household.merged.v1"

VillageCode = Field(pattern=r"^[0-9]{10}$", examples=["1771011001"])
Status = Literal["alive", "deceased", "moved"]
DeathSource = Literal["dukcapil", "health_facility", "facilitator", "family", "bps_reconciliation"]


class PersonSnapshot(BaseModel):
    """The facts about a person other services may keep (no NIK, no name)."""

    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID
    household_id: uuid.UUID | None = None
    village_code: str = VillageCode
    birth_date: date
    sex: Literal["M", "F"]
    status: Status
    relationship: str = Field(default="other", description="Relationship to the head of the KK")
    disability: str = "none"
    version: int = Field(ge=1, default=1)


class PersonRegistered(PersonSnapshot):
    """A person entered the DTSEN registry."""


class PersonUpdated(PersonSnapshot):
    """Attributes of a person changed; ``changed`` names them."""

    changed: list[str] = Field(default_factory=list)


class PersonDied(PersonSnapshot):
    """Death recorded (from Dukcapil, a facilitator or a BPS reconciliation)."""

    death_date: date
    source: DeathSource | None = Field(default=None, description="Who reported the death")


class PersonMoved(PersonSnapshot):
    """The person moved to another village and/or household."""

    from_village_code: str = VillageCode
    from_household_id: uuid.UUID | None = None


class HouseholdSnapshot(BaseModel):
    """A family card's targeting facts (no KK number, no address)."""

    model_config = ConfigDict(extra="forbid")

    household_id: uuid.UUID
    village_code: str = VillageCode
    decile: int | None = Field(default=None, ge=1, le=10)
    house_fit: bool = True
    floor: str = "other"
    wall: str = "other"
    roof: str = "other"
    water: str = "other"
    sanitation: str = "none"
    electricity: str = "none"
    status: Literal["active", "dissolved"] = "active"
    version: int = Field(ge=1, default=1)


class HouseholdRegistered(HouseholdSnapshot):
    """A family card entered the registry."""


class HouseholdUpdated(HouseholdSnapshot):
    """Targeting facts of a household changed; ``changed`` names them."""

    changed: list[str] = Field(default_factory=list)


class HouseholdDecileChanged(HouseholdSnapshot):
    """The household's DTSEN decile changed (BPS ranking, *naik kelas* or the reverse)."""

    previous_decile: int | None = Field(default=None, ge=1, le=10)


class HouseholdSplit(HouseholdSnapshot):
    """Members left this household (``household_id``) for a new one."""

    new_household_id: uuid.UUID
    person_ids: list[uuid.UUID]


class HouseholdMerged(HouseholdSnapshot):
    """Another household (``merged_household_id``) joined this one and was dissolved."""

    merged_household_id: uuid.UUID
    person_ids: list[uuid.UUID]


# type -> (topic, payload model): the catalogue the AsyncAPI document is generated from
PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    PERSON_REGISTERED: (PERSON_TOPIC, PersonRegistered),
    PERSON_UPDATED: (PERSON_TOPIC, PersonUpdated),
    PERSON_DIED: (PERSON_TOPIC, PersonDied),
    PERSON_MOVED: (PERSON_TOPIC, PersonMoved),
    HOUSEHOLD_REGISTERED: (HOUSEHOLD_TOPIC, HouseholdRegistered),
    HOUSEHOLD_UPDATED: (HOUSEHOLD_TOPIC, HouseholdUpdated),
    HOUSEHOLD_DECILE_CHANGED: (HOUSEHOLD_TOPIC, HouseholdDecileChanged),
    HOUSEHOLD_SPLIT: (HOUSEHOLD_TOPIC, HouseholdSplit),
    HOUSEHOLD_MERGED: (HOUSEHOLD_TOPIC, HouseholdMerged),
}
