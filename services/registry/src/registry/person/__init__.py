"""People of the registry: registration, changes (update, death, move) and version history."""
