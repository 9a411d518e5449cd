"""Complaints (pengaduan) from every intake channel, due a first response."""
