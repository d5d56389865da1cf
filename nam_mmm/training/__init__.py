"""nam_mmm.training."""
