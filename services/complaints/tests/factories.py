"""Builders of valid complaints inputs for tests."""

from __future__ import annotations

from typing import Any

# A village of Kecamatan Selebar, Kota Bengkulu (regency 1771)
VILLAGE = "1771011001"
# Batu Ampar, Kabupaten Bengkulu Selatan (1701): same province, another regency
OTHER_REGENCY_VILLAGE = "1701012001"


def complaint_body(**overrides: Any) -> dict[str, Any]:
    """A valid complaint; ``overrides`` replace raw fields afterwards (to make it invalid)."""
    body: dict[str, Any] = {
        "channel": "walk_in",
        "category": "data_correction",
        "region_code": VILLAGE,
        "summary": "Birth date in DTSEN differs from the family card",
    }
    body.update(overrides)
    return body
