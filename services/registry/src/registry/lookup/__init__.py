"""Audited lookups for partner agencies: by id, NIK, KK, a batch of NIKs, and search."""
