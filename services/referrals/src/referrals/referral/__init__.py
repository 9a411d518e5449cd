"""Referrals (rujukan) of registry people to other agencies' services, tracked to an answer."""
