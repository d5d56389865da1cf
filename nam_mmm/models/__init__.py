"""nam_mmm.models."""
