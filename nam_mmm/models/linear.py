"""Ridge regression with unpenalized unit levels, and its penalty chosen by rolling-origin cross-validation.

The linear models of the baselines and the shrinkage of the HR-NAM (``loss.lambda_function: auto``) are the
same computation on the same design, so they live here once. Plain numpy: rows are observations, the
unit index gives each row its own unpenalized level (a SKU fixed effect), periods order the rows in time.
"""

from __future__ import annotations

import numpy as np

RIDGE_ALPHAS = np.logspace(-3, 3, 25)  # penalty grid: weight of ‖β‖² against the mean squared error


def with_levels(features: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    """Prepend one 0/1 column per unit (the unpenalized levels)."""
    levels = np.zeros((len(unit), n_units))
    levels[np.arange(len(unit)), unit] = 1.0
    return np.concatenate([levels, features], axis=1)


def ridge_solve(features: np.ndarray, y: np.ndarray, unit: np.ndarray, n_units: int, alpha: float) -> np.ndarray:
    """Coefficients ``[levels (U), features (K)]`` minimizing ``mean (y − X β)² + alpha · ‖β_features‖²``.

    Units without rows get the mean of ``y`` as level; ``alpha = 0`` is least squares (minimum-norm solution).
    """
    x = with_levels(features, unit, n_units)
    seen = np.bincount(unit, minlength=n_units) > 0
    penalty = np.r_[np.where(seen, 0.0, 1e-8), np.full(features.shape[1], alpha * len(y))]
    beta = np.linalg.lstsq(x.T @ x + np.diag(penalty), x.T @ y, rcond=None)[0]
    beta[:n_units] = np.where(seen, beta[:n_units], y.mean() if len(y) else 0.0)
    return beta


def ridge_predict(beta: np.ndarray, features: np.ndarray, unit: np.ndarray, n_units: int) -> np.ndarray:
    return with_levels(features, unit, n_units) @ beta


def select_alpha(
    features: np.ndarray,
    y: np.ndarray,
    unit: np.ndarray,
    period: np.ndarray,
    n_units: int,
    alphas: np.ndarray = RIDGE_ALPHAS,
    n_origins: int | None = 3,
    min_history: int = 3,
) -> float:
    """Ridge penalty by rolling-origin cross-validation inside the training window.

    Each of the last ``n_origins`` periods (``None``: every period) with at least ``min_history`` earlier periods is predicted from a
    fit on the periods before it; the penalty with the lowest mean squared error over those origins wins (ties:
    the larger penalty). With no usable origin the middle of the grid is returned.
    """
    periods = np.unique(period)
    candidates = periods if n_origins is None else periods[-n_origins:]
    origins = [p for p in candidates if (periods < p).sum() >= min_history]
    if not origins or features.shape[1] == 0:
        return float(alphas[len(alphas) // 2])
    errors = np.zeros(len(alphas))
    for origin in origins:
        tr, te = period < origin, period == origin
        for i, alpha in enumerate(alphas):
            beta = ridge_solve(features[tr], y[tr], unit[tr], n_units, alpha)
            errors[i] += np.mean((y[te] - ridge_predict(beta, features[te], unit[te], n_units)) ** 2)
    return float(alphas[np.flatnonzero(errors <= errors.min() * (1 + 1e-9))[-1]])


def unit_rms(features: np.ndarray) -> np.ndarray:
    """Root mean square of each column (1 for an all-zero column): divide by it to give columns unit second moment."""
    rms = np.sqrt((features**2).mean(axis=0)) if len(features) else np.ones(features.shape[1])
    return np.where(rms > 1e-12, rms, 1.0)
