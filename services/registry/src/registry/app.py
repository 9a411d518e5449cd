from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.middleware import Middleware

from registry.consumers import CONSUMERS
from registry.dci import api as dci_api
from registry.dci.delivery import CALLBACK_JOB, callback_job
from registry.dci.errors import install_error_answers
from registry.dci.keys import RegistryKeyring
from registry.dci.scheduled import SEARCH_JOB, dci_housekeeping, search_job
from registry.household import api as household_api
from registry.lookup import api as lookup_api
from registry.lookup.hot_path import HotLookups
from registry.person import api as person_api
from registry.reconciliation import api as reconciliation_api
from registry.reconciliation.scheduled import IMPORT_JOB, import_job
from registry.region import api as region_api
from registry.settings import RegistrySettings
from registry.statistics import api as statistics_api
from shared.service import create_service_app

log = logging.getLogger("registry.app")

# One router per package, in the order the OpenAPI document lists them; then the SPDCI API.
ROUTERS = (
    person_api.router,
    region_api.router,
    lookup_api.router,
    household_api.router,
    statistics_api.router,
    reconciliation_api.router,
    dci_api.senders_router,
)


def create_app(
    settings: RegistrySettings | None = None, *, run_relay: bool = True, run_consumers: bool = True
) -> FastAPI:
    settings = settings or RegistrySettings()
    if settings.dci_signing_key is None and settings.environment == "production":
        log.warning(
            "registry.dci.stored_signing_key",
            extra={"hint": "set REGISTRY_DCI_SIGNING_KEY to keep the key out of the database"},
        )
    keyring = RegistryKeyring(settings)
    app = create_service_app(
        settings,
        title="Simpul Registry (DTSEN)",
        description=(
            "The data function of the integrated service centre: people and households of the "
            "single national socio-economic registry (DTSEN), Kemendagri region codes, "
            "audited lookups for partner agencies."
        ),
        version="0.1.0",
        routers=[*ROUTERS, dci_api.router],
        consumers=CONSUMERS,
        run_relay=run_relay,
        run_consumers=run_consumers,
        # DTSEN files are far larger than any JSON body.
        body_limits={"/v1/imports": settings.import_max_bytes},
        workers=[("dci-housekeeping", dci_housekeeping())],
        jobs={
            CALLBACK_JOB: callback_job(keyring, settings),
            SEARCH_JOB: search_job(settings),
            IMPORT_JOB: import_job(settings),
        },
        openapi_tags=[
            {
                "name": dci_api.TAG,
                "description": "The SPDCI Social Registry API (search, subscribe, unsubscribe, "
                "transaction status; sync and async) under "
                f"`{dci_api.BASE_PATH}`: signed envelopes, see the README.",
            }
        ],
        inner_middleware=[
            Middleware(
                HotLookups,
                database_url=settings.database_url,
                pool_size=settings.lookup_pool_size,
                wait_for_flush=settings.read_audits_wait_for_flush,
            )
        ],
    )
    app.state.dci_keyring = keyring
    install_error_answers(app, dci_api.router)
    return app
