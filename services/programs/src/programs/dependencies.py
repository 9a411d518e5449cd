"""Who may call what: the scope aliases the programs routes share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shared.auth import Caller, require_scope

Reader = Annotated[Caller, Depends(require_scope("programs:read"))]
Enroller = Annotated[Caller, Depends(require_scope("programs:enrol"))]
Administrator = Annotated[Caller, Depends(require_scope("programs:admin"))]
