from __future__ import annotations

from fastapi import FastAPI

from programs.catalogue import api as catalogue_api
from programs.consumers import CONSUMERS, REGISTRY_TOPICS
from programs.enrolment import api as enrolment_api
from programs.facts import api as facts_api
from programs.facts.lag import read_model_details
from programs.settings import ProgramsSettings
from shared.service import create_service_app


def create_app(
    settings: ProgramsSettings | None = None, *, run_relay: bool = True, run_consumers: bool = True
) -> FastAPI:
    return create_service_app(
        settings or ProgramsSettings(),
        title="Simpul Programs",
        description=(
            "The coordination function: enrolment of registry people in PKH, BPNT/Sembako, BLT, "
            "PBI-JK and Sekolah Rakyat, from a local read model of registry facts fed by events."
        ),
        version="0.1.0",
        routers=[catalogue_api.router, enrolment_api.router, facts_api.router],
        consumers=CONSUMERS,
        run_relay=run_relay,
        run_consumers=run_consumers,
        # How far behind the registry the read model is, reported (never a reason to be unready).
        readiness_details=read_model_details(REGISTRY_TOPICS),
    )
