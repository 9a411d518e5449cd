"""Errors of the read model beyond those in :mod:`programs.errors`.

NotFound
└── HouseholdFactNotFound      404  no registry fact of the card (yet), or outside the region

(Kept here while ``programs/errors.py`` is being changed for the catalogue; it belongs there.)
"""

from __future__ import annotations

from shared.errors import NotFound

__all__ = ["HouseholdFactNotFound"]


class HouseholdFactNotFound(NotFound):
    type = "household-fact-not-found"
    title = "Programs has no registry fact for this household (yet), or it is outside your region"
