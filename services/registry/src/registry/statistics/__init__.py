"""Statistics by region, decile and status: the information function's counts."""
