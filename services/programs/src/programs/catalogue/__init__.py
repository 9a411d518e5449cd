"""The programme catalogue: programmes, their benefits and their versioned eligibility rules."""
