"""The local read model of registry persons and of their referrals, fed only by events."""
