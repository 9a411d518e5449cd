"""Correction requests: complaints that ask the registry to correct a person's data."""
