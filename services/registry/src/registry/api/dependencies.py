"""Who may call what: the scope aliases every registry route uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import AwareDatetime

from shared.auth import Caller, require_scope

Reader = Annotated[Caller, Depends(require_scope("registry:read"))]
Writer = Annotated[Caller, Depends(require_scope("registry:write"))]
Purpose = Annotated[
    str,
    Query(
        min_length=3,
        max_length=200,
        description="Why you read this record; written to the audit log with your identity.",
        examples=["PBI-JK eligibility check"],
    ),
]
AsOf = Annotated[
    AwareDatetime | None,
    Query(
        description="Only the version valid at this instant (RFC 3339 with a UTC offset); "
        "leave out for every version.",
        examples=["2026-01-31T23:59:59+07:00"],
    ),
]
