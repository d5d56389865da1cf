"""Evaluate a trained fold and write the run files (metrics.json, elasticities.csv, roi.csv, …)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nam_mmm.data.datamodule import PanelDataModule
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

    def write(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "metrics.json": lambda p: p.write_text(json.dumps(_jsonable(self.metrics), indent=2, sort_keys=True) + "\n"),
            "elasticities.csv": lambda p: self.elasticities.to_csv(p, index=False),
            "contributions.csv": lambda p: self.roi[["channel", "contribution_inr", "share_of_gmv"]].to_csv(p, index=False),
            "roi.csv": lambda p: self.roi.to_csv(p, index=False),
            "curves.csv": lambda p: self.curves.to_csv(p, index=False),
            "predictions.csv": lambda p: self.predictions.to_csv(p, index=False),
        }
        paths = []
        for name, write in files.items():
            write(out / name)
            paths.append(out / name)
        return paths


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


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
    elasticities = elasticity_table(model, dm, "train")
    roi = roi_table(model, dm, "train")
    curves = curve_table(model, dm)
    metrics["adstock_decay"] = dict(zip(roi["channel"], roi["adstock_decay"].round(4), strict=True))
    if truth:
        metrics["recovery"] = recovery_metrics(truth, elasticities, roi, preds[preds["split"] == "test"])
    return FoldEvaluation(metrics, preds, elasticities, roi, curves)
