"""``referrals_settings``, ``referrals_service``, ``referrals_api`` and ``referrals_session``: see
:func:`shared.testing.service_fixtures`."""

from __future__ import annotations

from referrals.app import create_app
from referrals.settings import ReferralsSettings
from shared.testing import service_fixtures

referrals_settings, referrals_service, referrals_api, referrals_session = service_fixtures(
    "referrals", ReferralsSettings, create_app
)
