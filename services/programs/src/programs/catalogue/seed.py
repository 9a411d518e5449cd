"""The seed catalogue (programmes.toml): what the migration that creates the catalogue loads."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from programs.catalogue.rules import parse_rule

__all__ = ["SEED_AGENCY", "SEED_FILE", "seed_rows"]

SEED_FILE = Path(__file__).with_name("programmes.toml")
SEED_AGENCY = "simpul-seed"


def seed_rows(path: Path = SEED_FILE) -> list[dict[str, Any]]:
    """The seed programmes, each rule checked by the rule parser first."""
    with open(path, "rb") as handle:
        programmes: list[dict[str, Any]] = tomllib.load(handle)["programme"]
    for programme in programmes:
        parse_rule(programme["rule"])
    return programmes
