"""Registry errors, each a problem+json with its own status and type.

NotFound
└── PersonNotFound            404  no such person, or outside the caller's region
UnprocessableContent
├── InvalidNik                422  NIK fails the Dukcapil structure rules
└── UnknownRegion             422  village code not in the Kemendagri list
Conflict
└── NikAlreadyRegistered      409
Forbidden
└── OutsideRegion             403  writing a record outside the caller's region
"""

from __future__ import annotations

from shared.errors import Conflict, Forbidden, NotFound, UnprocessableContent

__all__ = [
    "InvalidNik",
    "NikAlreadyRegistered",
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
