"""Enrolments of registry people in programmes (PKH, BPNT/Sembako, BLT, PBI-JK, Sekolah Rakyat)."""
