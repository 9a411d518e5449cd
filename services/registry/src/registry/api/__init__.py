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

# One router per resource module, in the order the OpenAPI document lists them.
ROUTERS = tuple(
    module.router
    for module in (persons, regions, lookups, households, statistics, imports, dci_senders)
)
router = APIRouter()
for resource_router in ROUTERS:
    router.include_router(resource_router)

__all__ = ["ROUTERS", "router"]
