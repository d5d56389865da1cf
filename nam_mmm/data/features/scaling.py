"""Scaling statistics (§3.7), fitted on the training periods of a fold only and saved with the model.

A :class:`FittedScaler` maps raw units to model inputs as ``z = (T(x) − center[sku]) / scale`` with ``T`` the
log or the identity, maps media spend to multiples of its training mean, and maps log GMV to
``(log GMV − y_center[sku]) / y_scale``. It holds plain arrays so the model can carry them as buffers and
differentiate through them (elasticities in raw units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nam_mmm.data.features.table import FeatureSpec


@dataclass
class FittedScaler:
    """Statistics for one fold.

    Attributes:
        feature_names: model features in column order.
        log_mask: (F,) True where the raw value is log-transformed.
        center: (S, F) per-SKU centre in transformed units (identical rows for global centring).
        scale: (F,) divisor in transformed units.
        media_scale: (C,) mean spend per period of each channel over the training periods, rupees.
        y_center: (S,) per-SKU mean log GMV over the training rows.
        y_scale: pooled within-SKU standard deviation of log GMV over the training rows.
        z_min / z_max: (F,) smallest / largest scaled value of each feature over the training rows (the observed
            range; the model may clamp inputs to it, widened by a margin, instead of extrapolating without bound).
        media_max: (C,) largest undecayed lag sum of spend over training rows, in multiples of ``media_scale``:
            an upper bound of the adstocked input for any decay in [0, 1) (sets the media curve grid).
    """

    feature_names: list[str]
    log_mask: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    media_scale: np.ndarray
    y_center: np.ndarray
    y_scale: float
    media_max: np.ndarray | None = None
    z_min: np.ndarray | None = None
    z_max: np.ndarray | None = None

    def transform(self, x_raw: np.ndarray, sku: np.ndarray) -> np.ndarray:
        t = np.where(self.log_mask, np.log(np.where(self.log_mask, x_raw, 1.0)), x_raw)
        return (t - self.center[sku]) / self.scale

    def to_dict(self) -> dict:
        return {
            "feature_names": list(self.feature_names),
            "log_mask": self.log_mask.tolist(),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "media_scale": self.media_scale.tolist(),
            "y_center": self.y_center.tolist(),
            "y_scale": float(self.y_scale),
            "media_max": None if self.media_max is None else self.media_max.tolist(),
            "z_min": None if self.z_min is None else self.z_min.tolist(),
            "z_max": None if self.z_max is None else self.z_max.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> FittedScaler:
        return cls(
            feature_names=list(d["feature_names"]),
            log_mask=np.asarray(d["log_mask"], dtype=bool),
            center=np.asarray(d["center"], dtype=float).reshape(-1, len(d["feature_names"])),
            scale=np.asarray(d["scale"], dtype=float),
            media_scale=np.asarray(d["media_scale"], dtype=float),
            y_center=np.asarray(d["y_center"], dtype=float),
            y_scale=float(d["y_scale"]),
            media_max=None if d.get("media_max") is None else np.asarray(d["media_max"], dtype=float),
            z_min=None if d.get("z_min") is None else np.asarray(d["z_min"], dtype=float),
            z_max=None if d.get("z_max") is None else np.asarray(d["z_max"], dtype=float),
        )


def fit_scaler(
    specs: list[FeatureSpec],
    x_raw: np.ndarray,
    sku: np.ndarray,
    n_skus: int,
    log_gmv: np.ndarray,
    weight: np.ndarray,
    spend_per_period: np.ndarray,
    media_lag_sum: np.ndarray | None = None,
) -> FittedScaler:
    """Fit scaling statistics on training rows.

    Args:
        specs: model feature specs (F).
        x_raw: (N, F) raw feature values of the training rows.
        sku: (N,) SKU index of each training row.
        n_skus: number of SKUs in the model (SKUs without training rows get the global centre).
        log_gmv: (N,) log GMV of the training rows.
        weight: (N,) fit weight; rows with 0 (outages, missing GMV) do not enter the GMV statistics.
        spend_per_period: (T_train, C) spend per training period and channel (national media), or (N, C)
            current-period spend of each training row (SKU-level media), rupees.
        media_lag_sum: (N, C) undecayed sum of each training row's spend lag stack, rupees (for ``media_max``).
    """
    n_f = len(specs)
    log_mask = np.array([s.transform == "log" for s in specs], dtype=bool)
    t = np.where(log_mask, np.log(np.where(log_mask, x_raw, 1.0)), x_raw)
    counts = np.bincount(sku, minlength=n_skus).astype(float)
    center = np.zeros((n_skus, n_f))
    scale = np.ones(n_f)
    global_mean = t.mean(axis=0) if len(t) else np.zeros(n_f)
    sku_sum = np.zeros((n_skus, n_f))
    np.add.at(sku_sum, sku, t)
    sku_mean = np.where(counts[:, None] > 0, sku_sum / np.maximum(counts, 1)[:, None], global_mean[None, :])
    for j, s in enumerate(specs):  # per-feature choice of statistic: F ≤ ~30, columns are vectorized
        if s.center == "sku":
            center[:, j] = sku_mean[:, j]
        elif s.center == "global":
            center[:, j] = global_mean[j]
        resid = t[:, j] - center[sku, j]
        if s.scale == "std":
            sd = resid.std()
            scale[j] = sd if sd > 1e-12 else 1.0
        elif s.scale == "range":
            rng = t[:, j].max() - t[:, j].min()
            scale[j] = rng if rng > 1e-12 else 1.0
    y_center, y_scale = _target_stats(sku, n_skus, log_gmv, weight)
    media_scale, media_max = _media_stats(spend_per_period, media_lag_sum)
    z = (t - center[sku]) / scale if len(t) else np.zeros((0, n_f))
    z_min = z.min(axis=0) if len(z) else None
    z_max = z.max(axis=0) if len(z) else None
    return FittedScaler([s.name for s in specs], log_mask, center, scale, media_scale, y_center, y_scale, media_max, z_min, z_max)


def _target_stats(sku: np.ndarray, n_skus: int, log_gmv: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-SKU mean log GMV (the global mean for SKUs without fitted rows) and the pooled within-SKU standard
    deviation, over the rows with weight > 0."""
    use = weight > 0
    y_counts = np.bincount(sku[use], minlength=n_skus).astype(float)
    y_sum = np.bincount(sku[use], weights=log_gmv[use], minlength=n_skus)
    y_global = log_gmv[use].mean() if use.any() else 0.0
    y_center = np.where(y_counts > 0, y_sum / np.maximum(y_counts, 1), y_global)
    y_resid = log_gmv[use] - y_center[sku[use]]
    y_scale = float(y_resid.std()) if use.sum() > 1 and y_resid.std() > 1e-12 else 1.0
    return y_center, y_scale


def _media_stats(spend_per_period: np.ndarray, media_lag_sum: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean spend of each channel (1 where none) and the largest undecayed lag sum in multiples of it (at least 1)."""
    media_mean = spend_per_period.mean(axis=0) if len(spend_per_period) else np.ones(spend_per_period.shape[1])
    media_scale = np.where(media_mean > 0, media_mean, 1.0)
    media_max = None
    if media_lag_sum is not None and media_lag_sum.size:
        media_max = np.maximum(media_lag_sum.max(axis=0) / media_scale, 1.0)
    return media_scale, media_max
