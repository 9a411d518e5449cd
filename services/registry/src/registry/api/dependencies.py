"""Who may call what: the scope aliases every registry route uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

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
