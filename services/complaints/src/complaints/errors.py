"""Complaints errors, each a problem+json with its own status and type.

NotFound
└── ComplaintNotFound         404  no such complaint, or outside the caller's region
Forbidden
└── OutsideRegion             403  filing a complaint about a region outside the caller's
"""

from __future__ import annotations

from shared.errors import Forbidden, NotFound

__all__ = ["ComplaintNotFound", "OutsideRegion"]


class ComplaintNotFound(NotFound):
    type = "complaint-not-found"
    title = "Complaint not found"


class OutsideRegion(Forbidden):
    type = "outside-region"
    title = "The record lies outside the regions of your token"
