"""``registry_settings``, ``registry_service``, ``registry_api`` and ``registry_session``: see
:func:`shared.testing.service_fixtures`."""

from __future__ import annotations

from registry.app import create_app
from registry.settings import RegistrySettings
from shared.testing import service_fixtures

registry_settings, registry_service, registry_api, registry_session = service_fixtures(
    "registry",
    RegistrySettings,
    create_app,
    # SPDCI callbacks: retry soon and give up early, so the tests wait little.
    dci_callback_backoff_seconds=0.3,
    dci_callback_max_attempts=4,
    dci_callback_timeout_seconds=5.0,
)
