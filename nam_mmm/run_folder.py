"""The one writer of a run folder; its schema is ``docs/run_folder.md`` (a test holds the two together).

A run writes its inputs first (:meth:`RunFolder.write_inputs`: the resolved config, the validation findings,
the identifiability evidence), Lightning writes each fold's checkpoint where :meth:`RunFolder.checkpoint_path`
says, and the results last (:meth:`RunFolder.write_result` from a :class:`~nam_mmm.evaluation.run_result.RunResult`).
Holdout and walk-forward share one layout: the top-level tables have the same columns in both modes, and a
walk-forward adds its fold folders and fold summaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from nam_mmm.evaluation.run_result import CONTRIBUTION_COLUMNS, RunResult, fold_tables


class _Saveable(Protocol):
    def save(self, path: str | Path) -> None: ...


def jsonable(obj):
    """JSON-ready copy: numpy scalars to Python numbers, non-finite floats to null, keys to strings."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _json(path: Path, obj, sort_keys: bool = False) -> None:
    path.write_text(json.dumps(jsonable(obj), indent=2, sort_keys=sort_keys) + "\n")


class RunFolder:
    """The files of one run under ``root`` (created if missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def fold_dir(self, fold_index: int, n_folds: int) -> Path:
        """``root`` for a single fold (holdout), else ``root/fold_<k>``."""
        return self.root if n_folds == 1 else self.root / f"fold_{fold_index}"

    def checkpoint_path(self, fold_index: int, n_folds: int) -> Path:
        return self.fold_dir(fold_index, n_folds) / "model.ckpt"

    def write_inputs(self, config_yaml: str, validation: dict, identifiability: dict) -> None:
        """What the run was given and what was found in it, written before training starts."""
        (self.root / "config.yaml").write_text(config_yaml)
        _json(self.root / "validation.json", validation)
        _json(self.root / "identifiability.json", identifiability)

    def write_result(self, result: RunResult, predictor: _Saveable | None = None, ensemble: dict | None = None) -> None:
        """The results: summary metrics, out-of-sample predictions, attribution tables, the served model; under
        walk-forward also the fold table, acceptance, elasticity stability, the fold ensemble and every fold folder."""
        root = self.root
        result.oos_predictions.to_csv(root / "oos_predictions.csv", index=False)
        result.elasticities.to_csv(root / "elasticities.csv", index=False)
        result.roi.to_csv(root / "roi.csv", index=False)
        result.contributions.to_csv(root / "contributions.csv", index=False)
        result.curves.to_csv(root / "curves.csv", index=False)
        n = len(result.folds)
        for f in result.folds:
            folder = self.fold_dir(f.fold.index, n)
            folder.mkdir(parents=True, exist_ok=True)
            f.evaluation.predictions.to_csv(folder / "predictions.csv", index=False)
            if n > 1:  # a fold folder holds the fold model's own tables (holdout: they are the top-level ones)
                el, roi = fold_tables(f.evaluation)
                _json(folder / "metrics.json", f.evaluation.metrics, sort_keys=True)
                el.to_csv(folder / "elasticities.csv", index=False)
                roi.to_csv(folder / "roi.csv", index=False)
                roi[CONTRIBUTION_COLUMNS].to_csv(folder / "contributions.csv", index=False)
                f.evaluation.curves.to_csv(folder / "curves.csv", index=False)
        if result.mode == "walk_forward":
            result.fold_table.to_csv(root / "folds.csv", index=False)
            result.stability.to_csv(root / "elasticity_stability.csv", index=False)
            _json(root / "acceptance.json", {"passed": result.passed, "criteria": result.acceptance.to_dict("records")})
            if ensemble is not None:
                import torch

                torch.save(ensemble, root / "ensemble.pt")
        if predictor is not None:
            predictor.save(root / "predictor.pt")
        _json(root / "metrics.json", result.metrics, sort_keys=True)

    def files(self) -> list[Path]:
        """Every file under the folder, sorted (what is uploaded as artifacts)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())
