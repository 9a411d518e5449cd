"""Referrals errors, each a problem+json with its own status and type.

NotFound
└── ReferralNotFound          404  no such referral, or outside the caller's region
UnprocessableContent
└── InvalidDueDate            422  due_at is not in the future, or more than a year ahead
Forbidden
└── OutsideRegion             403  referring a person outside the caller's region
"""

from __future__ import annotations

from shared.errors import Forbidden, NotFound, UnprocessableContent

__all__ = ["InvalidDueDate", "OutsideRegion", "ReferralNotFound"]


class ReferralNotFound(NotFound):
    type = "referral-not-found"
    title = "Referral not found"


class InvalidDueDate(UnprocessableContent):
    type = "invalid-due-date"
    title = "The referral's due date is not acceptable"


class OutsideRegion(Forbidden):
    type = "outside-region"
    title = "The record lies outside the regions of your token"
