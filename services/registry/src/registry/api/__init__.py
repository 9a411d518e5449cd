"""The registry's REST API: one module per resource, each with its own router."""

from __future__ import annotations

from fastapi import APIRouter

from registry.api import (
    dci_senders,
    households,
    imports,
    lookups,
    persons,
    regions,
    statistics,
)

router = APIRouter()
for module in (persons, regions, lookups, households, statistics, imports, dci_senders):
    router.include_router(module.router)

__all__ = ["router"]
