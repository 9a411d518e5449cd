"""The local read model of registry persons and households, and of referrals, fed only by
events; ``rebuild`` replays it from the registry's topics."""
