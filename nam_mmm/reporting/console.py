"""The console summary of a run, read from its :class:`~nam_mmm.evaluation.run_result.RunResult`."""

from __future__ import annotations

import json
from pathlib import Path

from nam_mmm.evaluation.run_result import RunResult


def _fmt(v: float) -> str:
    return f"{v:,.3f}"


def run_summary(result: RunResult, run_dir: Path, identifiability_note: str = "", validation_note: str = "") -> str:
    """The text printed at the end of a run: fold table, pooled accuracy and acceptance (walk-forward), ROI,
    brand elasticities, truth recovery (synthetic data), warnings, and where the files are."""
    lines = [result.fold_table[["fold", "train", "test", "r2", "mape", "r2_within_sku_log", "epochs"]].to_string(index=False, float_format=lambda v: f"{v:.3f}")]
    roi = result.roi
    if result.mode == "walk_forward":
        p = result.metrics["walk_forward"]
        lines.append(
            f"\npooled out-of-sample: R² {p['pooled']['r2']:.3f}, MAPE {p['pooled']['mape']:.2f} %; "
            f"fold R² {p['fold_r2_mean']:.3f} ± {p['fold_r2_std']:.3f} (range {p['fold_r2_range']:.3f})"
        )
        lines += ["\nacceptance: " + ("PASS" if result.passed else "FAIL"), result.acceptance.to_string(index=False)]
        lines.append("\nROI (fold ensemble, all periods; interval = mean ± 1.96 sd across fold models):")
        cols = ["channel", "spend_inr", "contribution_inr", "roi", "roi_lower", "roi_upper", "marginal_roi", "adstock_decay"]
    else:
        lines.append("\nROI (training periods):")
        cols = ["channel", "spend_inr", "contribution_inr", "roi", "marginal_roi", "adstock_decay"]
        cols += [c for c in ("peak_vs_max_observed",) if c in roi]  # beta-gamma: where the response peaks
    lines.append(roi[cols].to_string(index=False, float_format=_fmt))
    brand = result.elasticities[result.elasticities["level"] == "brand"]
    if len(brand):
        lines += ["\nElasticities by brand (d log GMV / d log x):", brand.pivot(index="unit", columns="feature", values="elasticity").to_string(float_format=lambda v: f"{v:.2f}")]
    if "recovery" in result.metrics:
        lines.append("\nRecovery of the generator's truth: " + json.dumps({k: round(v, 4) for k, v in result.metrics["recovery"].items()}))
    if identifiability_note:
        lines.append(f"\nwarning: per-channel ROIs above are not identified by these data; see identifiability.json ({identifiability_note})")
    if validation_note:
        lines.append(validation_note)
    lines.append(f"\nrun folder: {run_dir}")
    return "\n".join(lines)
