"""``programs_settings``, ``programs_service``, ``programs_api`` and ``programs_session``: see
:func:`shared.testing.service_fixtures`."""

from __future__ import annotations

from programs.app import create_app
from programs.settings import ProgramsSettings
from shared.testing import service_fixtures

programs_settings, programs_service, programs_api, programs_session = service_fixtures(
    "programs", ProgramsSettings, create_app
)
