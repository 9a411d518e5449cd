"""The registry's REST API: one module per resource, each with its own router."""

from __future__ import annotations

from fastapi import APIRouter

from registry.api import persons, regions

router = APIRouter()
for module in (persons, regions):
    router.include_router(module.router)

__all__ = ["router"]
