"""Households (family cards, KK): registration, changes, split, merge and version history."""
