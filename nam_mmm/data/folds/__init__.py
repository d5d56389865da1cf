"""Folds: the time-series splitters (walk-forward, holdout) and the LightningDataModule that serves one fold as tensors."""
