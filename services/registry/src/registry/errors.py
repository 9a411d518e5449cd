"""Registry errors, each a problem+json with its own status and type.

NotFound
├── PersonNotFound            404  no such person, or outside the caller's region
└── HouseholdNotFound         404  no such household, or outside the caller's region
UnprocessableContent
├── InvalidNik                422  NIK fails the Dukcapil structure rules
├── InvalidKk                 422  KK fails the Dukcapil structure rules
├── UnknownRegion             422  village code not in the Kemendagri list
├── UnknownHousehold          422  a household_id in the body names no household you can see
├── InvalidChange             422  the change contradicts the record (death before birth...)
└── NoLowerRegionLevel        422  statistics by region asked of a village
Conflict
├── NikAlreadyRegistered      409
├── KkAlreadyRegistered       409
├── HouseholdAlreadyHasHead   409  uq_person_household_head: one living head per KK
├── PersonDeceased            409  the person is already recorded as deceased
└── HouseholdDissolved        409  the household was merged into another one
Forbidden
├── OutsideRegion             403  writing a record outside the caller's region
└── RegionOutsideScope        403  statistics asked for a region wider than the caller's
"""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, UnprocessableContent

__all__ = [
    "HouseholdAlreadyHasHead",
    "HouseholdDissolved",
    "HouseholdNotFound",
    "InvalidChange",
    "InvalidKk",
    "KkAlreadyRegistered",
    "PersonDeceased",
    "UnknownHousehold",
    "InvalidNik",
    "NikAlreadyRegistered",
    "NoLowerRegionLevel",
    "RegionOutsideScope",
    "OutsideRegion",
    "PersonNotFound",
    "RegionNotFound",
    "UnknownRegion",
]


class PersonNotFound(NotFound):
    type = "person-not-found"
    title = "Person not found"


class RegionNotFound(NotFound):
    type = "region-not-found"
    title = "Region not found"


class InvalidNik(UnprocessableContent):
    type = "invalid-nik"
    title = "NIK is not valid"


class UnknownRegion(UnprocessableContent):
    type = "unknown-region"
    title = "Region code is not a real Kemendagri code"


class NikAlreadyRegistered(Conflict):
    type = "nik-already-registered"
    title = "A person with this NIK is already registered"


class OutsideRegion(Forbidden):
    type = "outside-region"
    title = "The record lies outside the regions of your token"


class HouseholdNotFound(NotFound):
    type = "household-not-found"
    title = "Household not found"


class InvalidKk(UnprocessableContent):
    type = "invalid-kk"
    title = "KK number is not valid"


class UnknownHousehold(UnprocessableContent):
    type = "unknown-household"
    title = "No such household"


class InvalidChange(UnprocessableContent):
    type = "invalid-change"
    title = "The change contradicts the record"


class KkAlreadyRegistered(Conflict):
    type = "kk-already-registered"
    title = "A household with this KK number is already registered"


class HouseholdAlreadyHasHead(Conflict):
    type = "household-already-has-head"
    title = "The household already has a living head (uq_person_household_head)"


class PersonDeceased(Conflict):
    type = "person-deceased"
    title = "The person is recorded as deceased"


class HouseholdDissolved(Conflict):
    type = "household-dissolved"
    title = "The household was dissolved (merged into another)"


class NoLowerRegionLevel(UnprocessableContent):
    type = "no-lower-region-level"
    title = "A village has no region level below it"


class RegionOutsideScope(Forbidden):
    type = "region-outside-scope"
    title = "The region is not inside the regions of your token"
