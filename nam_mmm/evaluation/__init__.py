"""nam_mmm.evaluation."""
