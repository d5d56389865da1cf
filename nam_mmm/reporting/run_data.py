"""A finished run folder read back for reports: every file of ``docs/run_folder.md`` that is there, nothing else."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


def _csv(path: Path, **kwargs) -> pd.DataFrame | None:
    return pd.read_csv(path, **kwargs) if path.is_file() else None


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class RunData:
    """The tables and summaries of one run folder (None where the run did not write the file)."""

    root: Path
    config: dict
    metrics: dict
    elasticities: pd.DataFrame
    roi: pd.DataFrame
    curves: pd.DataFrame
    oos: pd.DataFrame
    contributions: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    folds: pd.DataFrame | None = None
    acceptance: dict | None = None
    stability: pd.DataFrame | None = None
    identifiability: dict | None = None
    validation: dict | None = None
    decomposition: pd.DataFrame | None = None
    observed_inputs: pd.DataFrame | None = None
    curves_sku: pd.DataFrame | None = None
    diagnostics: pd.DataFrame | None = None
    metrics_by_unit: pd.DataFrame | None = None
    health: pd.DataFrame | None = None
    prediction_band: pd.DataFrame | None = None
    curve_band: pd.DataFrame | None = None
    intervals: dict | None = None
    fold_elasticities: dict[int, pd.DataFrame] = field(default_factory=dict)
    fold_curves: dict[int, pd.DataFrame] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "walk_forward" if self.folds is not None else "holdout"

    @property
    def data_name(self) -> str:
        return str((self.config.get("data") or {}).get("name", "run"))

    @property
    def channels(self) -> list[str]:
        return list(self.roi["channel"]) if self.roi is not None else []

    @classmethod
    def load(cls, run_dir: str | Path) -> RunData:
        import yaml

        root = Path(run_dir)
        missing = [n for n in ("config.yaml", "metrics.json", "elasticities.csv", "roi.csv", "curves.csv", "oos_predictions.csv") if not (root / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{root} is not a finished run folder: {', '.join(missing)} missing")
        dates = {"parse_dates": ["period"]}
        run = cls(
            root=root,
            config=yaml.safe_load((root / "config.yaml").read_text()) or {},
            metrics=_json(root / "metrics.json") or {},
            elasticities=pd.read_csv(root / "elasticities.csv"),
            roi=pd.read_csv(root / "roi.csv"),
            curves=pd.read_csv(root / "curves.csv"),
            oos=pd.read_csv(root / "oos_predictions.csv", parse_dates=["date"]),
            contributions=_csv(root / "contributions.csv"),
            predictions=_csv(root / "predictions.csv", **dates),
            folds=_csv(root / "folds.csv"),
            acceptance=_json(root / "acceptance.json"),
            stability=_csv(root / "elasticity_stability.csv"),
            identifiability=_json(root / "identifiability.json"),
            validation=_json(root / "validation.json"),
            decomposition=_csv(root / "decomposition.csv", **dates),
            observed_inputs=_csv(root / "observed_inputs.csv"),
            curves_sku=_csv(root / "curves_sku.csv"),
            diagnostics=_csv(root / "diagnostics.csv"),
            metrics_by_unit=_csv(root / "metrics_by_unit.csv", keep_default_na=False, na_values=[""]),
            health=_csv(root / "health.csv"),
            prediction_band=_csv(root / "prediction_band.csv", **dates),
            curve_band=_csv(root / "curve_band.csv"),
            intervals=_json(root / "intervals.json"),
        )
        for p in sorted(root.glob("fold_*/elasticities.csv")):
            run.fold_elasticities[int(p.parent.name.split("_")[1])] = pd.read_csv(p)
        for p in sorted(root.glob("fold_*/curves.csv")):
            run.fold_curves[int(p.parent.name.split("_")[1])] = pd.read_csv(p)
        return run
