"""The demo data set: a synthetic DTSEN generator and the seed ``simpul run`` loads."""
