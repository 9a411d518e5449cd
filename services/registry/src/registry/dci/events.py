"""Registry events as SPDCI registry event types (``reg_event_type``).

The registry's own events (:mod:`registry.events`) are finer than what a DCI subscriber asks
for; this module names the DCI event type(s) each one is, and parses the spellings subscribers
use. The canonical names are ours (the Social Registry spec leaves the list "as per
implementation context" and only gives ``REGISTER`` and ``NewHouseHoldMember``):

================== ==========================================================================
DCI event type     registry events
================== ==========================================================================
REGISTER           person registered, household registered
UPDATE             person updated, household updated, household split, household merged
DEATH              person died
MOVE               person moved (another village and/or family card)
NewHouseHoldMember person moved onto another family card, or registered on one
DECILE_CHANGE      household decile changed
================== ==========================================================================

Subscribers may write a type in any case and with the vocabulary prefix
(``spdci-common:RegistryEventType:Death``); CRVS-style names (``Death``) are the same types.
"""

from __future__ import annotations

from registry.events import (
    HOUSEHOLD_DECILE_CHANGED,
    HOUSEHOLD_MERGED,
    HOUSEHOLD_REGISTERED,
    HOUSEHOLD_SPLIT,
    HOUSEHOLD_UPDATED,
    PERSON_DIED,
    PERSON_MOVED,
    PERSON_REGISTERED,
    PERSON_UPDATED,
)

__all__ = [
    "DEATH",
    "DECILE_CHANGE",
    "EVENT_TYPES",
    "MOVE",
    "NEW_HOUSEHOLD_MEMBER",
    "NOTIFY_ENUM",
    "REGISTER",
    "UPDATE",
    "canonical_event_type",
    "dci_event_types",
]

REGISTER = "REGISTER"
UPDATE = "UPDATE"
DEATH = "DEATH"
MOVE = "MOVE"
NEW_HOUSEHOLD_MEMBER = "NewHouseHoldMember"
DECILE_CHANGE = "DECILE_CHANGE"
EVENT_TYPES = (REGISTER, UPDATE, DEATH, MOVE, NEW_HOUSEHOLD_MEMBER, DECILE_CHANGE)

# The values the spec's NotifyEventRequest enumerates for ``data.reg_event_type``: a notify of
# another type leaves the field out rather than break a client that validates the enum (the
# subscriber knows the type from the subscription its ``transaction_id`` names).
NOTIFY_ENUM = frozenset({REGISTER, NEW_HOUSEHOLD_MEMBER})

# Spellings seen in the SPDCI vocabularies and samples, lower-cased, without prefix.
_SPELLINGS: dict[str, str] = {
    **{name.lower(): name for name in EVENT_TYPES},
    "registration": REGISTER,
    "register": REGISTER,
    "update": UPDATE,
    "died": DEATH,
    "death": DEATH,
    "move": MOVE,
    "moved": MOVE,
    "newhouseholdmember": NEW_HOUSEHOLD_MEMBER,
    "new_household_member": NEW_HOUSEHOLD_MEMBER,
    "decile_change": DECILE_CHANGE,
    "decilechange": DECILE_CHANGE,
    "poverty_score_change": DECILE_CHANGE,
}


def canonical_event_type(spelling: str) -> str | None:
    """The canonical DCI event type of a subscriber's spelling, or None if it names none.

    ``spdci-common:RegistryEventType:Death``, ``spdci:common:RegistryEventType:REGISTER``,
    ``death`` and ``DEATH`` all name a type: the vocabulary prefix (everything up to the last
    ``:``) and the case do not matter.
    """
    name = spelling.strip().rsplit(":", 1)[-1].strip().lower()
    return _SPELLINGS.get(name)


# Registry event -> the DCI types it always is (NewHouseHoldMember depends on the payload).
_EVENT_TYPES_OF: dict[str, tuple[str, ...]] = {
    PERSON_REGISTERED: (REGISTER,),
    PERSON_UPDATED: (UPDATE,),
    PERSON_DIED: (DEATH,),
    PERSON_MOVED: (MOVE,),
    HOUSEHOLD_REGISTERED: (REGISTER,),
    HOUSEHOLD_UPDATED: (UPDATE,),
    HOUSEHOLD_SPLIT: (UPDATE,),
    HOUSEHOLD_MERGED: (UPDATE,),
    HOUSEHOLD_DECILE_CHANGED: (DECILE_CHANGE,),
}


def dci_event_types(event_type: str, *, joined_household: bool = False) -> tuple[str, ...]:
    """The DCI event types one registry event is (none for an event DCI has no name for).

    ``joined_household``: the person landed on a family card (registered onto one, or moved
    onto another), which makes the event a ``NewHouseHoldMember`` as well.
    """
    types = _EVENT_TYPES_OF.get(event_type, ())
    if joined_household and event_type in (PERSON_REGISTERED, PERSON_MOVED):
        return (*types, NEW_HOUSEHOLD_MEMBER)
    return types
