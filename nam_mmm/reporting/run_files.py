"""The analysis files of a run folder that reports read (``docs/run_folder.md``, "Analysis files").

:func:`write_analysis` is called at the end of training, after :meth:`nam_mmm.run_folder.RunFolder.write_result`,
with the run's :class:`~nam_mmm.evaluation.run_result.RunResult` (it needs the models for the per-row tables) and,
when the bootstrap ran, its :class:`~nam_mmm.evaluation.intervals.IntervalTables`. The files that need only the
run folder (``metrics_by_unit.csv``, ``health.csv``) are computed from the folder itself by
:func:`unit_metrics` and :func:`nam_mmm.evaluation.health.health_checks`, so a report of an old run can rebuild them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nam_mmm.evaluation.health import HealthConfig, health_checks
from nam_mmm.evaluation.metrics import metrics_table, naive_mean_forecast
from nam_mmm.run_folder import jsonable


def _fold_training_rows(run_dir: Path) -> pd.DataFrame | None:
    """Every fold's rows before its test periods (``split`` train / val) with ``fold``, from the fold folders
    (walk-forward) or ``predictions.csv`` (holdout)."""
    folds = sorted(run_dir.glob("fold_*/predictions.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    parts = []
    if folds:
        for p in folds:
            d = pd.read_csv(p)
            parts.append(d[d["split"].isin(["train", "val"])].assign(fold=int(p.parent.name.split("_")[1])))
    elif (run_dir / "predictions.csv").is_file():
        d = pd.read_csv(run_dir / "predictions.csv")
        parts.append(d[d["split"].isin(["train", "val"])].assign(fold=0))
    return pd.concat(parts, ignore_index=True) if parts else None


def unit_metrics(run_dir: str | Path) -> pd.DataFrame:
    """``metrics_by_unit.csv``: :func:`~nam_mmm.evaluation.metrics.metrics_table` of the out-of-sample rows
    (``oos_predictions.csv``) overall, per brand and per SKU, with skill versus the naive mean (each SKU's mean
    GMV over its fold's training and validation rows, as ``scripts/compare_models.py``'s ``naive_mean``)."""
    run_dir = Path(run_dir)
    oos = pd.read_csv(run_dir / "oos_predictions.csv")
    train = _fold_training_rows(run_dir)
    if train is not None:
        oos["naive"] = naive_mean_forecast(oos, train)
    return metrics_table(oos, "naive" if train is not None else None)


def write_analysis(run_dir: str | Path, result, intervals=None, health: HealthConfig | dict | None = None) -> list[Path]:
    """Write the analysis files into ``run_dir`` and return their paths:

    ``decomposition.csv``, ``observed_inputs.csv``, ``curves_sku.csv``, ``diagnostics.csv`` (from ``result``'s
    models), ``metrics_by_unit.csv`` and ``health.csv`` (from the folder); with ``intervals`` also
    ``bootstrap.csv``, ``prediction_band.csv``, ``curve_band.csv`` and ``intervals.json``. ``elasticities.csv`` /
    ``roi.csv`` are not touched here: the run writes them from ``result``, whose tables the caller replaced with
    ``intervals.elasticities`` / ``intervals.roi``."""
    from nam_mmm.evaluation.diagnostics import run_tables

    run_dir = Path(run_dir)
    written = []
    for name, frame in run_tables(result).items():
        path = run_dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    if intervals is not None:
        for name, frame in (("bootstrap", intervals.replicates), ("prediction_band", intervals.prediction_band), ("curve_band", intervals.curve_band)):
            if frame is None:
                continue
            path = run_dir / f"{name}.csv"
            frame.to_csv(path, index=False)
            written.append(path)
        path = run_dir / "intervals.json"
        path.write_text(json.dumps(jsonable(intervals.info), indent=2) + "\n")
        written.append(path)
    path = run_dir / "metrics_by_unit.csv"
    unit_metrics(run_dir).to_csv(path, index=False)
    written.append(path)
    path = run_dir / "health.csv"
    health_checks(run_dir, health).to_csv(path, index=False)
    written.append(path)
    return written
