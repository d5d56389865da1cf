"""The linear design of a fold: model features as the HR-NAM sees them, media as fixed-decay adstock.

Shared by the baseline models (which must use exactly the HR-NAM's features) and by the HR-NAM's own
ridge-calibrated shrinkage. Scaled features come from a :class:`~nam_mmm.data.features.scaling.FittedScaler` fitted on
training periods only; media are the lag stacks weighted by the table's fixed decays, in multiples of the
channel's mean training spend (the same units the model's media curves take).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nam_mmm.data.features.scaling import FittedScaler


@dataclass
class LinearDesign:
    """Rows of one split. ``z``: (n, F + C) scaled features then adstocked media; ``media_cols``: media column indices."""

    z: np.ndarray
    unit: np.ndarray
    period: np.ndarray
    log_gmv: np.ndarray
    media_cols: np.ndarray


def linear_design(x_raw: np.ndarray, media: np.ndarray, sku: np.ndarray, period: np.ndarray, log_gmv: np.ndarray, scaler: FittedScaler, decay: np.ndarray) -> LinearDesign:
    """Design rows from raw inputs: ``x_raw`` (n, F) raw model features, ``media`` (n, C, L+1) spend lag stacks in rupees."""
    z = scaler.transform(x_raw, sku)
    if media.shape[1]:
        weights = np.asarray(decay, dtype=float)[:, None] ** np.arange(media.shape[-1])[None, :]
        adstock = (media * weights).sum(-1) / scaler.media_scale
    else:
        adstock = np.zeros((len(z), 0))
    return LinearDesign(np.concatenate([z, adstock], axis=1), sku, period, log_gmv, np.arange(z.shape[1], z.shape[1] + adstock.shape[1]))
