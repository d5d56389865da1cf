"""nam_mmm.data."""
