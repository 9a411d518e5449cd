"""Typed access to what a service keeps on its FastAPI app (``app.state``).

Starlette's ``State`` is an untyped bag: ``app.state.runtime`` is ``Any`` to the type checker, and
a typo or a missing value only shows as an ``AttributeError`` somewhere far from the cause.
:func:`app_state` reads a value by name and checks its class, so each reader names the type it
expects once and a wrong or missing value fails with a message that says which.
"""

from __future__ import annotations

from typing import TypeVar

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

__all__ = ["app_state"]

ValueT = TypeVar("ValueT")


def app_state(owner: Starlette | HTTPConnection, name: str, kind: type[ValueT]) -> ValueT:
    """``app.state.<name>`` of ``owner`` (an app, or a request of one), checked to be a ``kind``."""
    app = owner if isinstance(owner, Starlette) else owner.app
    value = getattr(app.state, name, None)
    if not isinstance(value, kind):
        found = "nothing" if value is None else type(value).__name__
        raise LookupError(f"app.state.{name} holds {found}; expected {kind.__name__}")
    return value
