from __future__ import annotations

from fastapi import FastAPI

from referrals.consumers import CONSUMERS
from referrals.referral import api as referral_api
from referrals.settings import ReferralsSettings
from shared.service import create_service_app


def create_app(
    settings: ReferralsSettings | None = None, *, run_relay: bool = True, run_consumers: bool = True
) -> FastAPI:
    return create_service_app(
        settings or ReferralsSettings(),
        title="Simpul Referrals (rujukan)",
        description=(
            "The referral function of the integrated service centre: sending a registry person "
            "to another agency's service (BPJS, BGN, Dinas Kesehatan, schools, cooperatives) and "
            "tracking it to completion under a deadline."
        ),
        version="0.1.0",
        routers=[referral_api.router],
        consumers=CONSUMERS,
        run_relay=run_relay,
        run_consumers=run_consumers,
    )
