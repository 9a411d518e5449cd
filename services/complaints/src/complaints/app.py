from __future__ import annotations

from fastapi import FastAPI

from complaints.complaint import api as complaint_api
from complaints.consumers import CONSUMERS
from complaints.settings import ComplaintsSettings
from shared.service import create_service_app


def create_app(
    settings: ComplaintsSettings | None = None,
    *,
    run_relay: bool = True,
    run_consumers: bool = True,
) -> FastAPI:
    return create_service_app(
        settings or ComplaintsSettings(),
        title="Simpul Complaints (pengaduan)",
        description=(
            "The complaint function of the integrated service centre: intake from every channel "
            "(walk-in, phone, SMS, WhatsApp, web, LAPOR!), with the LAPOR! first-response "
            "deadline; data-correction complaints reach the registry by event."
        ),
        version="0.1.0",
        routers=[complaint_api.router],
        consumers=CONSUMERS,
        run_relay=run_relay,
        run_consumers=run_consumers,
    )
