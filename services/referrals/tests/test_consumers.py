"""Complaints about access to a service open a referral to the social office (real broker)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from referrals.settings import ReferralsSettings
from shared.testing import RunningService, eventually, fetch, publish_events

from .factories import VILLAGE

pytestmark = pytest.mark.broker

TOPIC = "complaints.complaint.v1"
FILED = "complaints.complaint.filed.v1"
COMPLAINTS = "/simpul/complaints"


def complaint(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "complaint_id": str(uuid.uuid4()),
        "category": "service_access",
        "region_code": VILLAGE,
        "person_id": str(uuid.uuid4()),
        "summary": "Refused at the puskesmas although the family holds PBI-JK",
        "channel": "walk_in",
        "due_at": "2030-01-04T10:00:00Z",
    }
    data.update(overrides)
    return data


async def handled(settings: ReferralsSettings, event_ids: list[str]) -> bool:
    rows = await fetch(
        settings, "SELECT count(*) AS n FROM inbox_event WHERE event_id = ANY($1)", event_ids
    )
    return rows[0]["n"] == len(event_ids)


class TestComplaintFiled:
    async def test_service_access_complaint_opens_a_referral(
        self, referrals_service: RunningService, referrals_settings: ReferralsSettings
    ) -> None:
        data = complaint()
        await publish_events(
            referrals_settings, TOPIC, data, type=FILED, source=COMPLAINTS, key=data["complaint_id"]
        )

        async def referral() -> list[asyncpg.Record]:
            return await fetch(
                referrals_settings,
                "SELECT id, person_id, region_code, to_agency, service_type, referred_by_agency"
                " FROM referral WHERE complaint_id = $1",
                uuid.UUID(data["complaint_id"]),
            )

        rows = await eventually(referral, what="referral opened from the complaint")
        row = rows[0]
        assert (
            str(row["person_id"]),
            row["region_code"],
            row["to_agency"],
            row["service_type"],
        ) == (data["person_id"], VILLAGE, "DINSOS-1771", "other")
        events = await fetch(
            referrals_settings, "SELECT event_type FROM outbox_event WHERE key = $1", str(row["id"])
        )
        assert [e["event_type"] for e in events] == ["referrals.referral.created.v1"]

    @pytest.mark.parametrize(
        "change",
        [{"category": "data_correction"}, {"person_id": None}, {"region_code": "1771"}],
    )
    async def test_other_complaints_open_nothing(
        self,
        referrals_service: RunningService,
        referrals_settings: ReferralsSettings,
        change: dict[str, Any],
    ) -> None:
        data = complaint(**change)
        event_ids = await publish_events(
            referrals_settings, TOPIC, data, type=FILED, source=COMPLAINTS, key=data["complaint_id"]
        )
        await eventually(
            lambda: handled(referrals_settings, event_ids), what="complaint event handled"
        )
        rows = await fetch(
            referrals_settings,
            "SELECT id FROM referral WHERE complaint_id = $1",
            uuid.UUID(data["complaint_id"]),
        )
        assert rows == []

    async def test_one_referral_per_complaint_even_if_filed_twice(
        self, referrals_service: RunningService, referrals_settings: ReferralsSettings
    ) -> None:
        data = complaint()
        # Two distinct events (say, a republished complaint): the inbox alone would not stop this.
        event_ids = await publish_events(
            referrals_settings,
            TOPIC,
            data,
            data,
            type=FILED,
            source=COMPLAINTS,
            key=data["complaint_id"],
        )
        await eventually(lambda: handled(referrals_settings, event_ids), what="both events handled")
        rows = await fetch(
            referrals_settings,
            "SELECT id FROM referral WHERE complaint_id = $1",
            uuid.UUID(data["complaint_id"]),
        )
        assert len(rows) == 1
