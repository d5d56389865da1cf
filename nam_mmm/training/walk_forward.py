"""The walk-forward runner: a fresh model per fold, trained on the fold's training periods only.

Early stopping watches the inner validation slice at the end of each training window (never the test
periods); scaling is fitted on the training periods inside the DataModule; test predictions are mapped back
to rupees by the model itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L

from nam_mmm.data.features.table import FeatureTable
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.evaluation.report import evaluate_fold
from nam_mmm.evaluation.run_result import FoldResult
from nam_mmm.training.module import NAMModule
from nam_mmm.training.runner import train_fold


def run_folds(
    table: FeatureTable,
    folds: list[Fold],
    make_module: Callable[[PanelDataModule], NAMModule],
    make_trainer: Callable[[Fold, NAMModule], L.Trainer],
    checkpoint_path: Callable[[Fold], Path],
    seed: int = 0,
    batch_size: int | None = None,
    on_fold_end: Callable[[FoldResult], None] | None = None,
) -> list[FoldResult]:
    """Train and evaluate one model per fold, saving each fold's checkpoint at ``checkpoint_path(fold)``.
    Under DDP only global rank 0 returns fold results (the other processes return an empty list).
    ``on_fold_end`` sees each evaluated fold (e.g. to report it to a hyper-parameter search, which may stop the
    run by raising)."""
    runs = []
    for fold in folds:
        result = train_fold(table, fold, make_module, make_trainer, seed, batch_size)
        dm, trainer = result.datamodule, result.trainer
        trainer.save_checkpoint(checkpoint_path(fold))  # collective under DDP; rank 0 writes
        if not trainer.is_global_zero:
            continue  # under DDP every process trains; only the first one evaluates and writes files
        evaluation = evaluate_fold(result.module.model, dm, table.panel.truth)
        evaluation.metrics.update(
            {
                "fold": fold.index,
                "epochs": result.epochs,
                "best_epoch": result.best_epoch,
                "fit_seconds": round(result.fit_seconds, 3),
                "lambda_function": float(result.module.loss_fn.config.lambda_function),
                "lambda_media": float(result.module.loss_fn.config.lambda_media),
            }
        )
        runs.append(FoldResult(fold, evaluation, result.module.model, dm))
        if on_fold_end is not None:
            on_fold_end(runs[-1])
    return runs
