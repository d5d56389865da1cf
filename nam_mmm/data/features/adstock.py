"""Geometric adstock and lag stacks (seed §3.4).

Carry-over: the adstocked spend of period t is ``sum_{l=0..L} decay**l * spend[t-l]`` (weights 1, d, d², …,
not normalized, so a one-off spend of 1 leaves 1 + d + d² + … in total). Spend before the first period of
the calendar counts as zero. Adstock is computed on the whole calendar of a series, so the first test period
of a fold carries over the spend of the training periods before it; spend is an input known in advance,
never the target, so this leaks nothing.
"""

from __future__ import annotations

import numpy as np


def lag_stack(spend: np.ndarray, max_lag: int) -> np.ndarray:
    """Spend at t, t−1, …, t−max_lag for each period.

    Args:
        spend: array (T,) or (T, C) of spend per period, in its own units (rupees).
        max_lag: number of past periods carried over (0 = no carry-over).

    Returns:
        (T, L+1) or (T, C, L+1): ``out[t, ..., l] = spend[t - l]`` (0 before the first period).
    """
    if max_lag < 0:
        raise ValueError(f"max_lag must be >= 0, got {max_lag}")
    x = np.asarray(spend, dtype=float)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    t = x.shape[0]
    out = np.zeros((t, x.shape[1], max_lag + 1))
    for lag in range(min(max_lag, t - 1) + 1):  # loop over lags only, vectorized over periods and channels
        out[lag:, :, lag] = x[: t - lag]
    return out[:, 0, :] if squeeze else out


def geometric_weights(decay: float | np.ndarray, max_lag: int) -> np.ndarray:
    """Weights ``decay**l`` for l = 0..max_lag; ``decay`` scalar → (L+1,), array (C,) → (C, L+1)."""
    d = np.asarray(decay, dtype=float)
    if np.any((d < 0) | (d >= 1)):
        raise ValueError(f"adstock decay must be in [0, 1), got {decay}")
    return d[..., None] ** np.arange(max_lag + 1)


def geometric_adstock(spend: np.ndarray, decay: float | np.ndarray, max_lag: int) -> np.ndarray:
    """Adstocked spend ``sum_l decay**l * spend[t-l]``; ``spend`` (T,) with scalar decay or (T, C) with (C,) decays."""
    stack = lag_stack(spend, max_lag)
    w = geometric_weights(decay, max_lag)
    return (stack * w).sum(axis=-1)
