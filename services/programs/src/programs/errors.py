"""Programs errors.

NotFound
├── EnrolmentNotFound          404  no such enrolment, or outside the caller's region
└── PersonFactNotFound         404  no registry fact (yet), or outside the caller's region
UnprocessableContent
└── PersonNotKnown             422  the registry has not (yet) told programs about the person
Conflict
└── AlreadyEnrolled            409  the person already has an active enrolment in the programme
"""

from __future__ import annotations

from shared.errors import Conflict, NotFound, UnprocessableContent

__all__ = ["AlreadyEnrolled", "EnrolmentNotFound", "PersonFactNotFound", "PersonNotKnown"]


class EnrolmentNotFound(NotFound):
    type = "enrolment-not-found"
    title = "Enrolment not found"


class PersonFactNotFound(NotFound):
    type = "person-fact-not-found"
    title = "Programs has no registry fact for this person (yet), or it is outside your region"


class PersonNotKnown(UnprocessableContent):
    type = "person-not-known"
    title = "The person is not in the programs read model of the registry"


class AlreadyEnrolled(Conflict):
    type = "already-enrolled"
    title = "The person is already enrolled in this programme"
