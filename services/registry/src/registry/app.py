from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from registry import api
from registry.api.hot_lookups import HotLookups
from registry.consumers import CONSUMERS
from registry.settings import RegistrySettings
from shared.service import create_service_app


def create_app(
    settings: RegistrySettings | None = None, *, run_relay: bool = True, run_consumers: bool = True
) -> FastAPI:
    settings = settings or RegistrySettings()
    return create_service_app(
        settings,
        title="Simpul Registry (DTSEN)",
        description=(
            "The data function of the integrated service centre: people and households of the "
            "single national socio-economic registry (DTSEN), Kemendagri region codes, "
            "audited lookups for partner agencies."
        ),
        version="0.1.0",
        routers=[api.router],
        consumers=CONSUMERS,
        run_relay=run_relay,
        run_consumers=run_consumers,
        # DTSEN files are far larger than any JSON body.
        body_limits={"/v1/imports": settings.import_max_bytes},
        inner_middleware=[
            Middleware(
                HotLookups,
                database_url=settings.database_url,
                pool_size=settings.lookup_pool_size,
            )
        ],
    )
