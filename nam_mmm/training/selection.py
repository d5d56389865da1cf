"""Choosing the media shrinkage from the data (``loss.lambda_media: cv``).

A media ridge (``loss.lambda_media``) stops weak national spend from absorbing seasonality, but on panels with
strong, separable media the same penalty costs out-of-sample accuracy and attribution. Which case a panel is in is
not known in advance, so the penalty is chosen by a forecast inside the first fold's training window — the one
window that every fold's training window contains, so no fold's test periods are ever seen: the last
``h`` periods of that window (``h`` = the folds' test length) are forecast by a model trained on the periods
before them, once per value of ``loss.lambda_media_grid``. The rule is the one-standard-error idea of
cross-validated ridge and lasso (Hastie, Tibshirani and Friedman): the **largest** penalty whose forecast error
is within ``loss.lambda_media_tolerance`` (relative) of the best one, because a forecast that cannot tell the
penalties apart cannot tell the channels' sizes apart either, and then the prior that media does little wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import lightning as L
import numpy as np
import pandas as pd

from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.evaluation.attribution import predictions
from nam_mmm.evaluation.metrics import rmse
from nam_mmm.models.nam import HierarchicalNAM
from nam_mmm.training.module import NAMModule
from nam_mmm.training.runner import train_fold


@dataclass
class MediaShrinkageChoice:
    """The chosen ``lambda_media`` with the evidence: the inner forecast's error per grid value."""

    chosen: float
    grid: list[float]
    inner_mse_log: list[float | None]  # mean squared error of log GMV on the inner test periods (None: not fitted)
    inner_train: str
    inner_test: str
    tolerance: float
    reason: str
    admissible: list[float] = field(default_factory=list)  # the grid values within the tolerance (the chosen one among them)
    # per fitted grid value, the inner model and its datamodule (eval mode): what the estimates would be under each
    # penalty, read only by the intervals' penalty allowance (nam_mmm.evaluation.intervals.choice_allowance)
    inner_fits: dict[float, tuple[HierarchicalNAM, PanelDataModule]] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "inner_fits"}  # no copy of the models


def inner_fold(fold: Fold, horizon: int) -> Fold | None:
    """The fold's training window split in two: the last ``horizon`` periods tested, the rest trained on.
    None when the window is shorter than ``3 · horizon`` (fewer than ``2 · horizon`` periods would be left to train on)."""
    horizon = max(int(horizon), 1)
    if len(fold.train) < 3 * horizon:
        return None
    return Fold(fold.index, fold.train[:-horizon], fold.train[:0], fold.train[-horizon:])


def log_mse(frame: pd.DataFrame) -> float:
    """Mean squared error of log GMV over rows with a fit weight and positive actual and predicted GMV; NaN when
    any such row's prediction is not finite (a diverged fit never wins on the rows it happened to get right)."""
    fitted = frame[(frame["fit_weight"] > 0) & (frame["actual"] > 0)]
    if not np.isfinite(fitted["predicted"].to_numpy(float)).all():
        return float("nan")
    rows = fitted[fitted["predicted"] > 0]
    if not len(rows):
        return float("nan")
    return rmse(np.log(rows["actual"].to_numpy(float)), np.log(rows["predicted"].to_numpy(float))) ** 2


def admissible(grid: list[float], errors: list[float], tolerance: float) -> list[float]:
    """The grid values whose error is finite and within ``tolerance`` (relative) of the smallest finite error:
    the penalties the inner forecast cannot tell apart (empty when no error is finite)."""
    finite = [(lam, e) for lam, e in zip(grid, errors, strict=True) if np.isfinite(e)]
    if not finite:
        return []
    best = min(e for _, e in finite)
    return [lam for lam, e in finite if e <= best * (1.0 + tolerance)]


def choose(grid: list[float], errors: list[float], tolerance: float) -> tuple[float, str]:
    """The largest grid value whose error is within ``tolerance`` (relative) of the smallest finite error."""
    within = admissible(grid, errors, tolerance)
    if not within:
        return min(grid), "no grid value gave a finite inner forecast error: the smallest penalty is used"
    best = min(e for e in errors if np.isfinite(e))
    return max(within), f"largest penalty whose inner forecast error is within {tolerance:.0%} of the best ({best:.4g})"


def select_media_shrinkage(
    table: FeatureTable,
    fold: Fold,
    grid: list[float],
    tolerance: float,
    make_module: Callable[[PanelDataModule, float], NAMModule],
    make_trainer: Callable[[Fold, NAMModule], L.Trainer],
    seed: int = 0,
    batch_size: int | None = None,
) -> MediaShrinkageChoice:
    """Train one model per grid value on the inner split of ``fold``'s training window and pick the penalty by
    :func:`choose`. ``make_module(dm, lambda_media)`` builds the module with that penalty."""
    grid = sorted(float(g) for g in grid)
    inner = inner_fold(fold, len(fold.test))
    if inner is None:
        return MediaShrinkageChoice(
            min(grid), grid, [None] * len(grid), "—", "—", tolerance,
            f"the first training window ({len(fold.train)} periods) is too short to hold out {len(fold.test)}: the smallest penalty is used",
            [min(grid)],
        )
    errors, fits = [], {}
    for lam in grid:
        fit = train_fold(table, inner, lambda dm, lam=lam: make_module(dm, lam), make_trainer, seed, batch_size)
        model = fit.module.model.eval()
        errors.append(log_mse(predictions(model, fit.datamodule, "test")))
        fits[lam] = (model, fit.datamodule)
    chosen, reason = choose(grid, errors, tolerance)
    spans = inner.describe()
    return MediaShrinkageChoice(
        chosen, grid, [None if not np.isfinite(e) else e for e in errors], spans["train"], spans["test"], tolerance, reason,
        admissible(grid, errors, tolerance) or [chosen], fits,
    )
