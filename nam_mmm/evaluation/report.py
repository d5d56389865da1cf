"""Evaluate a trained fold: accuracy per split, elasticities, ROI, curves and truth recovery (no files: see nam_mmm.run_folder)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.errors import TrainingError
from nam_mmm.evaluation.attribution import curve_table, elasticity_table, predictions, roi_table
from nam_mmm.evaluation.metrics import accuracy
from nam_mmm.evaluation.recovery import recovery_metrics
from nam_mmm.models.nam import HierarchicalNAM


@dataclass
class FoldEvaluation:
    """Everything measured on one trained fold."""

    metrics: dict
    predictions: pd.DataFrame  # all rows with split label, actual and predicted GMV (rupees)
    elasticities: pd.DataFrame
    roi: pd.DataFrame
    curves: pd.DataFrame

    @property
    def test_predictions(self) -> pd.DataFrame:
        return self.predictions[self.predictions["split"] == "test"]


def evaluate_fold(model: HierarchicalNAM, dm: PanelDataModule, truth: dict | None = None) -> FoldEvaluation:
    """Accuracy per split (rupees), elasticities, ROI, curves, and truth recovery on synthetic data.

    Elasticities and ROI are measured on the training periods (what the model learned from); accuracy is
    reported for train, validation and the held-out test periods.
    """
    model.eval()
    metrics: dict = {}
    frames = []
    for split in ("train", "val", "test"):
        if not dm.splits[split]["x"].shape[0]:
            continue
        pred = predictions(model, dm, split)
        pred.insert(0, "split", split)
        frames.append(pred)
        fit = pred[pred["fit_weight"] > 0]
        if len(fit):
            metrics[split] = accuracy(fit["actual"], fit["predicted"], fit["sku"])
    preds = pd.concat(frames, ignore_index=True)
    bad = ~np.isfinite(preds["predicted"].to_numpy(dtype=float))
    if bad.any():  # finite loss but overflowing curves (e.g. a far too high learning rate): no table from garbage
        splits = ", ".join(f"{s} {int(n)}" for s, n in preds.loc[bad, "split"].value_counts().items())
        raise TrainingError(
            f"training diverged: the trained model's predictions are not finite on {int(bad.sum())} of {len(preds)} "
            f"rows ({splits}); lower optimizer.lr or check the data"
        )
    elasticities = elasticity_table(model, dm, "train")
    roi = roi_table(model, dm, "train")
    curves = curve_table(model, dm)
    metrics["adstock_decay"] = dict(zip(roi["channel"], roi["adstock_decay"].round(4), strict=True))
    if truth:
        metrics["recovery"] = recovery_metrics(truth, elasticities, roi, preds[preds["split"] == "test"])
    return FoldEvaluation(metrics, preds, elasticities, roi, curves)
