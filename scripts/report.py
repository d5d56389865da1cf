"""Write a run's report: plots, the self-contained HTML and the executive PDF (docs/reports.md).

    python scripts/report.py run_dir=experiments/runs/dtmart/<timestamp>
    python scripts/report.py run_dir=<run> intervals.enabled=true intervals.resamples=20   # + block-bootstrap intervals
    python scripts/report.py run_dir=<run> health.benchmarks=conf/roi_benchmarks.yaml   # ROI benchmarks check

The report reads the run folder only. A run trained before the analysis files existed (``decomposition.csv``,
``observed_inputs.csv``, ``curves_sku.csv``, ``diagnostics.csv``) gets them first (``backfill=auto``): the script
rebuilds the run's feature table and folds from its ``config.yaml`` (so the data must still be where the config
says), loads each fold's ``model.ckpt`` and re-evaluates it — the same numbers the run wrote. With
``intervals.enabled=true`` it also refits the model on block-bootstrap resamples and rewrites ``elasticities.csv``
and ``roi.csv`` with the bootstrap interval (minutes: one training run per resample).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from nam_mmm.entry import one_line_errors  # noqa: E402
from nam_mmm.errors import ConfigError  # noqa: E402

ANALYSIS_FILES = ("decomposition.csv", "observed_inputs.csv", "curves_sku.csv", "diagnostics.csv")


def typed_config(cfg: DictConfig) -> DictConfig:
    """A saved (resolved) ``config.yaml`` with its model and loss blocks typed against the schemas of
    :mod:`nam_mmm.config`, as the run composed them (the builders take the typed objects)."""
    from nam_mmm.config import LossConfig, ModelSettings

    cfg.model = OmegaConf.merge(OmegaConf.structured(ModelSettings), {k: v for k, v in cfg.model.items() if k in ModelSettings.__dataclass_fields__})
    cfg.loss = OmegaConf.merge(OmegaConf.structured(LossConfig), {k: v for k, v in cfg.loss.items() if k in LossConfig.__dataclass_fields__})
    return cfg


def rebuild_result(run_dir: Path):
    """``(cfg, table, result)`` of a finished run folder: the run's :class:`RunResult` rebuilt from its config,
    data and checkpoints (the evaluation is deterministic, so the tables equal the ones the run wrote)."""
    from nam_mmm.data.folds.datamodule import PanelDataModule
    from nam_mmm.entry import load_table, make_splitter, quiet_lightning
    from nam_mmm.evaluation.report import evaluate_fold
    from nam_mmm.evaluation.run_result import FoldResult, summarize_run
    from nam_mmm.evaluation.walk_forward import AcceptanceCriteria
    from nam_mmm.training.module import NAMModule

    quiet_lightning()
    cfg = typed_config(OmegaConf.load(run_dir / "config.yaml"))
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    fold_results = []
    for fold in folds:
        folder = run_dir if len(folds) == 1 else run_dir / f"fold_{fold.index}"
        ckpt = folder / "model.ckpt"
        if not ckpt.is_file():
            raise ConfigError(f"{ckpt} is missing: the run's models are needed to rebuild its analysis files")
        module = NAMModule.load_from_checkpoint(ckpt, map_location="cpu")
        dm = PanelDataModule(table, fold, batch_size=cfg.batch_size, seed=int(cfg.seed))
        evaluation = evaluate_fold(module.model.eval(), dm, table.panel.truth)
        saved = folder / "metrics.json"
        if saved.is_file():
            stored = json.loads(saved.read_text())
            evaluation.metrics.update({k: stored[k] for k in ("fold", "epochs", "best_epoch", "fit_seconds", "lambda_function") if k in stored})
        fold_results.append(FoldResult(fold, evaluation, module.model.eval(), dm))
    acceptance_cfg = cfg.validation.get("acceptance")
    criteria = AcceptanceCriteria(**OmegaConf.to_container(acceptance_cfg, resolve=True)) if acceptance_cfg else AcceptanceCriteria()
    return cfg, table, summarize_run(fold_results, table.panel.truth, criteria)


def backfill(run_dir: Path, intervals_cfg: dict, health: dict | None) -> list[Path]:
    """The model-based analysis files (and, when asked, the bootstrap intervals) of an existing run folder."""
    from nam_mmm.entry import _builders
    from nam_mmm.evaluation.intervals import IntervalConfig, bootstrap_intervals
    from nam_mmm.evaluation.run_result import CONTRIBUTION_COLUMNS
    from nam_mmm.reporting.run_files import write_analysis

    cfg, table, result = rebuild_result(run_dir)
    tables = None
    if intervals_cfg.get("enabled"):
        make_module, make_trainer = _builders(cfg, table, len(result.folds), [], [])
        tables = bootstrap_intervals(result, table, make_module, make_trainer, IntervalConfig(**intervals_cfg), seed=int(cfg.seed), batch_size=cfg.batch_size)
        result.elasticities, result.roi = tables.elasticities, tables.roi
        result.elasticities.to_csv(run_dir / "elasticities.csv", index=False)
        result.roi.to_csv(run_dir / "roi.csv", index=False)
        result.roi[CONTRIBUTION_COLUMNS].to_csv(run_dir / "contributions.csv", index=False)
    return write_analysis(run_dir, result, tables, health)


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
@one_line_errors
def main(cfg: DictConfig) -> None:
    from nam_mmm.reporting.report import write_report

    run_dir = Path(cfg.run_dir)
    if not run_dir.is_absolute():
        run_dir = (Path.cwd() / run_dir).resolve()
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"run_dir={cfg.run_dir}: not a run folder (no config.yaml)")
    health = OmegaConf.to_container(cfg.health, resolve=True) if cfg.get("health") else None
    health = {k: v for k, v in (health or {}).items() if v is not None} or None
    intervals_cfg = OmegaConf.to_container(cfg.intervals, resolve=True)
    mode = str(cfg.backfill).lower()
    if mode not in ("auto", "true", "false"):
        raise ConfigError(f"backfill must be auto, true or false, got {cfg.backfill}")
    needs = [n for n in ANALYSIS_FILES if not (run_dir / n).is_file()]
    written = []
    if mode == "true" or (mode == "auto" and needs) or intervals_cfg.get("enabled"):
        written += backfill(run_dir, intervals_cfg, health)
    elif needs:
        print(f"note: {', '.join(needs)} missing and backfill=false: the report leaves out what they feed", file=sys.stderr)
    comparison = cfg.get("comparison")
    written += write_report(run_dir, comparison="auto" if comparison == "auto" else comparison, health=health, feature=cfg.get("brand_sku_feature"), html=bool(cfg.html), pdf=bool(cfg.pdf))
    for p in dict.fromkeys(written):
        print(p)


if __name__ == "__main__":
    main()
