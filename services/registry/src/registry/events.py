"""Events the registry publishes. Each topic is one aggregate and version; the key is its id.

Payloads carry the registry's person id, never the NIK or the name: consumers that need more
ask through the audited REST lookups.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/registry"
PERSON_TOPIC = "registry.person.v1"
PERSON_REGISTERED = "registry.person.registered.v1"


class PersonRegistered(BaseModel):
    """A person entered the DTSEN registry."""

    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID
    village_code: str = Field(pattern=r"^[0-9]{10}$", examples=["1771011001"])
    birth_date: date
    sex: Literal["M", "F"]
    status: Literal["alive", "deceased", "moved"]


# type -> (topic, payload model): the catalogue the AsyncAPI document is generated from
PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    PERSON_REGISTERED: (PERSON_TOPIC, PersonRegistered),
}
