"""``complaints_settings``, ``complaints_service``, ``complaints_api`` and
``complaints_session``: see :func:`shared.testing.service_fixtures`."""

from __future__ import annotations

from complaints.app import create_app
from complaints.settings import ComplaintsSettings
from shared.testing import service_fixtures

complaints_settings, complaints_service, complaints_api, complaints_session = service_fixtures(
    "complaints", ComplaintsSettings, create_app
)
