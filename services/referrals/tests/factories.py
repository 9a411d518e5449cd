"""Builders of valid referrals inputs for tests."""

from __future__ import annotations

import uuid
from typing import Any

# A village of Kecamatan Selebar, Kota Bengkulu (regency 1771)
VILLAGE = "1771011001"
# Batu Ampar, Kabupaten Bengkulu Selatan (1701): same province, another regency
OTHER_REGENCY_VILLAGE = "1701012001"


def referral_body(**overrides: Any) -> dict[str, Any]:
    """A valid referral; ``overrides`` replace raw fields afterwards (to make it invalid)."""
    body: dict[str, Any] = {
        "person_id": str(uuid.uuid4()),
        "region_code": VILLAGE,
        "service_type": "health_check",
        "to_agency": "DINKES-1771",
        "reason": "Health check before Sekolah Rakyat entry",
    }
    body.update(overrides)
    return body
