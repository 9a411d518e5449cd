"""Programs errors.

NotFound
├── EnrolmentNotFound          404  no such enrolment, or outside the caller's region
├── HouseholdFactNotFound      404  no registry fact of the card (yet), or outside the region
├── PersonFactNotFound         404  no registry fact (yet), or outside the caller's region
└── ProgrammeNotFound          404  no programme has the code
UnprocessableContent
├── PersonNotKnown             422  the registry has not (yet) told programs about the person
├── UnknownProgramme           422  the enrolment names a programme the catalogue does not hold
├── NotEligible                422  the rule in force refuses the person (``errors`` names why)
└── InvalidRule                422  an eligibility rule that cannot be read (``field`` says where)
Conflict
├── AlreadyEnrolled            409  the person already has an active enrolment in the programme
└── ProgrammeExists            409  a programme with the code exists already
"""

from __future__ import annotations

from shared.errors import Conflict, NotFound, UnprocessableContent

__all__ = [
    "AlreadyEnrolled",
    "EnrolmentNotFound",
    "HouseholdFactNotFound",
    "InvalidRule",
    "NotEligible",
    "PersonFactNotFound",
    "PersonNotKnown",
    "ProgrammeExists",
    "ProgrammeNotFound",
    "UnknownProgramme",
]


class EnrolmentNotFound(NotFound):
    type = "enrolment-not-found"
    title = "Enrolment not found"


class HouseholdFactNotFound(NotFound):
    type = "household-fact-not-found"
    title = "Programs has no registry fact for this household (yet), or it is outside your region"


class PersonFactNotFound(NotFound):
    type = "person-fact-not-found"
    title = "Programs has no registry fact for this person (yet), or it is outside your region"


class PersonNotKnown(UnprocessableContent):
    type = "person-not-known"
    title = "The person is not in the programs read model of the registry"


class AlreadyEnrolled(Conflict):
    type = "already-enrolled"
    title = "The person is already enrolled in this programme"


class ProgrammeNotFound(NotFound):
    type = "programme-not-found"
    title = "No programme has this code"


class InvalidRule(UnprocessableContent):
    type = "invalid-rule"
    title = "The eligibility rule cannot be read"


class ProgrammeExists(Conflict):
    type = "programme-exists"
    title = "A programme with this code exists already"


class UnknownProgramme(UnprocessableContent):
    type = "unknown-programme"
    title = "The catalogue holds no programme with this code"


class NotEligible(UnprocessableContent):
    type = "not-eligible"
    title = "The programme's eligibility rule refuses this person"
