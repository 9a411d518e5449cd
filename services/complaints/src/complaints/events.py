"""Events the complaints service publishes. One topic per aggregate and version; the key is its id.

``complaints.complaint.filed.v1`` carries the summary because the registry opens a data-correction
request from it; the person is named only by the registry's person id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/complaints"
COMPLAINT_TOPIC = "complaints.complaint.v1"
COMPLAINT_FILED = "complaints.complaint.filed.v1"

Channel = Literal["walk_in", "phone", "sms", "whatsapp", "web", "lapor"]
Category = Literal["data_correction", "service_access", "payment", "conduct", "other"]
CHANNELS: tuple[str, ...] = get_args(Channel)
CATEGORIES: tuple[str, ...] = get_args(Category)
# Province (2), regency/city (4), district (6) or village (10): a Kemendagri code's shapes.
REGION_PATTERN = r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$"


class ComplaintFiled(BaseModel):
    """A complaint was received; it is due a first response by ``due_at``."""

    model_config = ConfigDict(extra="forbid")

    complaint_id: uuid.UUID
    category: Category
    region_code: str = Field(pattern=REGION_PATTERN, examples=["1771011001", "1771"])
    person_id: uuid.UUID | None = Field(
        description="The registry's person id, when the complaint is about one"
    )
    summary: str = Field(min_length=1, max_length=2000)
    channel: Channel
    due_at: datetime


# type -> (topic, payload model): the catalogue the AsyncAPI document is generated from
PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    COMPLAINT_FILED: (COMPLAINT_TOPIC, ComplaintFiled),
}
