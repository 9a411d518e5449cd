"""Events from other services that complaints acts on: none yet.

Complaints only publishes for now (the registry and referrals consume
``complaints.complaint.filed.v1``); handlers for, e.g., a referral's outcome go here.
"""

from __future__ import annotations

from shared.service import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = []
