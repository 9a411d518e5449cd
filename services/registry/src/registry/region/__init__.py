"""Kemendagri region codes: the four levels from province to village, and their reads."""
