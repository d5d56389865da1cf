"""nam-mmm: hierarchically regularized, shape-constrained neural additive models for marketing mix modeling."""

__version__ = "0.1.0"
