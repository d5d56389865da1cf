"""A run's results in one object: what the run folder, MLflow, the console and reports read.

:func:`summarize_run` turns the evaluated folds of a run (one fold under holdout, several under walk-forward)
into a :class:`RunResult` with one schema for both validation modes (``docs/run_folder.md``):

* ``oos_predictions``: every test row of every fold (rupees);
* ``elasticities`` / ``roi`` / ``contributions`` / ``curves``: holdout — the single model on its training rows;
  walk-forward — the fold ensemble on every period (mean over fold models). Interval columns say what they
  are in ``interval``: :data:`INTERVAL_ROW_SPREAD` (10–90 % quantiles of row-level values: the spread across
  operating points, not uncertainty), :data:`INTERVAL_FOLD_SD` (fold-model mean ± 1.96 sd), or
  :data:`INTERVAL_NONE` where there is no interval;
* ``metrics``: the ``metrics.json`` summary; ``fold_table``, ``stability``, ``acceptance`` under walk-forward.

Nothing here writes files: :mod:`nam_mmm.run_folder` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.evaluation.attribution import elasticity_table, roi_table
from nam_mmm.evaluation.metrics import accuracy
from nam_mmm.evaluation.recovery import recovery_metrics
from nam_mmm.evaluation.report import FoldEvaluation
from nam_mmm.evaluation.walk_forward import AcceptanceCriteria, acceptance, aggregate, elasticity_stability, ensemble_tables, fold_table
from nam_mmm.models.nam import HierarchicalNAM

INTERVAL_ROW_SPREAD = "row_spread_10_90"
INTERVAL_FOLD_SD = "fold_mean_pm_1.96sd"
INTERVAL_NONE = "none"

ELASTICITY_COLUMNS = ["level", "unit", "feature", "elasticity", "lower", "upper", "interval", "sd", "members", "n_rows"]
ROI_COLUMNS = [
    "channel",
    "spend_inr",
    "contribution_inr",
    "share_of_gmv",
    "roi",
    "roi_lower",
    "roi_upper",
    "marginal_roi",
    "marginal_roi_lower",
    "marginal_roi_upper",
    "interval",
    "adstock_decay",
]
CONTRIBUTION_COLUMNS = ["channel", "contribution_inr", "share_of_gmv"]
OOS_COLUMNS = ["fold", "date", "brand", "sku", "actual", "predicted", "fit_weight"]


@dataclass
class FoldResult:
    """One trained and evaluated fold: its periods, its evaluation, the trained model and its data."""

    fold: Fold
    evaluation: FoldEvaluation
    model: HierarchicalNAM
    datamodule: PanelDataModule


@dataclass
class RunResult:
    """Everything a run measured (see the module docstring for the tables)."""

    mode: str  # "holdout" (one fold) or "walk_forward"
    folds: list[FoldResult]
    metrics: dict
    oos_predictions: pd.DataFrame
    elasticities: pd.DataFrame
    roi: pd.DataFrame
    contributions: pd.DataFrame
    curves: pd.DataFrame
    fold_table: pd.DataFrame
    stability: pd.DataFrame | None = None
    acceptance: pd.DataFrame | None = None

    @property
    def members(self) -> list[HierarchicalNAM]:
        return [f.model for f in self.folds]

    @property
    def passed(self) -> bool | None:
        """The acceptance verdict under walk-forward, None under holdout."""
        return None if self.acceptance is None else bool(self.acceptance["passed"].all())

    def objective(self, path: str) -> float:
        """The metric at a dotted path into :attr:`metrics` (``walk_forward.pooled.r2``)."""
        value = self.metrics
        for part in path.split("."):
            value = value[part]
        return float(value)


def _ordered(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The schema's columns first, in order; extra columns of a family (e.g. beta-gamma peaks) after them."""
    return frame[[c for c in columns if c in frame] + [c for c in frame if c not in columns]]


def fold_tables(ev: FoldEvaluation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One fold model's elasticities (row-spread interval) and ROI (no interval) in the run-folder schema."""
    el = ev.elasticities.assign(interval=INTERVAL_ROW_SPREAD, sd=np.nan, members=1)
    roi = ev.roi.assign(roi_lower=np.nan, roi_upper=np.nan, marginal_roi_lower=np.nan, marginal_roi_upper=np.nan, interval=INTERVAL_NONE)
    return _ordered(el, ELASTICITY_COLUMNS), _ordered(roi, ROI_COLUMNS)


def _ensemble(fold_results: list[FoldResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold ensemble on every period: mean elasticities / ROI and their spread across fold models."""
    full = fold_results[-1].datamodule  # every fold's data module holds every period; the last one's scaler is the latest
    members = [f.model.eval() for f in fold_results]
    el, roi = ensemble_tables([elasticity_table(m, full, "all") for m in members], [roi_table(m, full, "all") for m in members])
    return el.assign(interval=INTERVAL_FOLD_SD), roi.assign(interval=INTERVAL_FOLD_SD)


def summarize_run(fold_results: list[FoldResult], truth: dict | None, criteria: AcceptanceCriteria) -> RunResult:
    """Aggregate evaluated folds into a :class:`RunResult` (pooled accuracy; under walk-forward also the fold
    table, elasticity stability, acceptance, the fold ensemble's tables and truth recovery)."""
    folds = [f.fold for f in fold_results]
    evaluations = [f.evaluation for f in fold_results]
    oos = pd.concat([ev.test_predictions.assign(fold=f.index) for f, ev in zip(folds, evaluations, strict=True)], ignore_index=True)
    oos = oos.rename(columns={"period": "date"})[OOS_COLUMNS]
    fit = oos[oos["fit_weight"] > 0]
    metrics: dict = {"test": accuracy(fit["actual"], fit["predicted"], fit["sku"]), "folds": len(folds)}
    table = fold_table(folds, evaluations)
    if len(fold_results) == 1:
        metrics = {**evaluations[0].metrics, **metrics}
        el, roi = fold_tables(evaluations[0])
        return RunResult(
            "holdout", fold_results, metrics, oos, _ordered(el, ELASTICITY_COLUMNS), _ordered(roi, ROI_COLUMNS),
            roi[CONTRIBUTION_COLUMNS], evaluations[0].curves, table,
        )
    stability = elasticity_stability(evaluations)
    agg = aggregate(oos, table, stability)
    verdict = acceptance(agg, criteria)
    el, roi = _ensemble(fold_results)
    metrics.update({"walk_forward": agg, "acceptance_passed": bool(verdict["passed"].all())})
    if truth:
        metrics["recovery"] = recovery_metrics(truth, el, roi, oos.rename(columns={"date": "period"}))
    return RunResult(
        "walk_forward", fold_results, metrics, oos, _ordered(el, ELASTICITY_COLUMNS), _ordered(roi, ROI_COLUMNS),
        roi[CONTRIBUTION_COLUMNS], evaluations[-1].curves, table, stability, verdict,
    )
