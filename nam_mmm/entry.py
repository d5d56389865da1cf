"""The edge between Hydra configs and the package: configs become objects here, plain arguments flow inward.

Used by ``train.py`` and ``scripts/*.py`` only; nothing deeper in the package imports this module.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nam_mmm.errors import NamMMMError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _repo_root() -> str:
    """Project root (the folder holding ``conf/``) for paths in configs; the working directory if installed elsewhere."""
    return str(REPO_ROOT if (REPO_ROOT / "conf").is_dir() else Path.cwd())


if not OmegaConf.has_resolver("repo_root"):
    OmegaConf.register_new_resolver("repo_root", _repo_root)


def one_line_errors(fn: Callable) -> Callable:
    """Turn a :class:`NamMMMError` raised by ``fn`` into ``error: <message>`` on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NamMMMError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def load_table(data_cfg: DictConfig):
    """Instantiate the data source, validate and clean it, and build the feature table."""
    from hydra.utils import instantiate

    from nam_mmm.data.cleaning import CleaningConfig, prepare_panel
    from nam_mmm.data.features import FeatureConfig, build_features

    panel = instantiate(data_cfg.source, _convert_="all")
    cleaning = CleaningConfig(**OmegaConf.to_container(data_cfg.cleaning, resolve=True))
    prepare_panel(panel, cleaning)
    features = FeatureConfig(**OmegaConf.to_container(data_cfg.features, resolve=True))
    return build_features(panel, features)


def make_splitter(validation_cfg: DictConfig):
    from hydra.utils import instantiate

    return instantiate(validation_cfg.splitter)


def quiet_lightning() -> None:
    """Keep the console for results: Lightning's banner lines and two known-harmless warnings off."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*ReduceLROnPlateau conditioned on metric.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*weights_only.*")


def flatten(cfg: DictConfig, prefix: str = "") -> dict[str, object]:
    """Resolved config as flat ``a.b.c -> value`` pairs (MLflow params)."""
    out: dict[str, object] = {}

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        else:
            out[key] = node if isinstance(node, (int, float, str, bool)) or node is None else str(node)

    walk(OmegaConf.to_container(cfg, resolve=True), prefix)
    return out


def _loggers(cfg: DictConfig) -> list:
    from hydra.utils import instantiate

    if not cfg.get("logger"):
        return []
    return [instantiate(c) for c in cfg.logger.values() if c is not None]


def _results_table(evaluations: list, folds: list) -> str:
    import pandas as pd

    rows = []
    for fold, ev in zip(folds, evaluations, strict=True):
        test = ev.metrics.get("test", {})
        rows.append({"fold": fold.index, "test": fold.describe()["test"], "r2": test.get("r2"), "mape_%": test.get("mape"), "r2_within_sku_log": test.get("r2_within_sku_log")})
    return pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}")


def train(cfg: DictConfig) -> float:
    """Train per the composed config, write the run files into the Hydra run folder, return the objective."""
    import json
    import time

    import lightning as L
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from nam_mmm.data.datamodule import PanelDataModule
    from nam_mmm.evaluation.report import evaluate_fold
    from nam_mmm.training.loss import LossConfig
    from nam_mmm.training.module import NAMModule
    from nam_mmm.training.runner import ModelSettings, fit_fold, model_config

    started = time.perf_counter()
    quiet_lightning()
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    table = load_table(cfg.data)
    panel = table.panel
    folds = make_splitter(cfg.validation).split(panel.periods)
    settings = ModelSettings(**OmegaConf.to_container(cfg.model, resolve=True))
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    loss = LossConfig(**OmegaConf.to_container(cfg.loss, resolve=True))
    loggers = _loggers(cfg)
    for lg in loggers:
        lg.log_hyperparams(flatten(cfg))
    panel.report.save(out_dir / "validation.json")
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    evaluations, summary = [], {}
    for fold in folds:  # one fresh model per fold (holdout = one fold)
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
        dm = PanelDataModule(table, fold, batch_size=cfg.batch_size, seed=int(cfg.seed))
        module = NAMModule(model_config(dm, settings, constraints), loss=vars(loss), **OmegaConf.to_container(cfg.optimizer, resolve=True))
        callbacks = [instantiate(c) for c in cfg.callbacks.values() if c is not None]
        trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        result = fit_fold(dm, module, trainer)
        evaluation = evaluate_fold(result.module.model, dm, panel.truth)
        evaluation.metrics.update({"fold": fold.index, "epochs": result.epochs, "best_epoch": result.best_epoch, "fit_seconds": round(result.fit_seconds, 3)})
        fold_dir = out_dir if len(folds) == 1 else out_dir / f"fold_{fold.index}"
        evaluation.write(fold_dir)
        trainer.save_checkpoint(fold_dir / "model.ckpt")
        evaluations.append(evaluation)

    import pandas as pd

    oos = pd.concat([ev.test_predictions.assign(fold=i) for i, ev in enumerate(evaluations)], ignore_index=True)
    oos[["fold", "period", "brand", "sku", "actual", "predicted"]].rename(columns={"period": "date"}).to_csv(out_dir / "oos_predictions.csv", index=False)
    from nam_mmm.evaluation.metrics import accuracy

    fit = oos[oos["fit_weight"] > 0]
    summary = {"test": accuracy(fit["actual"], fit["predicted"], fit["sku"]), "folds": len(folds), "wall_seconds": round(time.perf_counter() - started, 2)}
    if len(evaluations) == 1:
        summary = {**evaluations[0].metrics, **summary}
    (out_dir / "metrics.json").write_text(json.dumps(_jsonable_summary(summary), indent=2, sort_keys=True) + "\n")
    for lg in loggers:
        flat = {f"{k}": v for k, v in _flat_metrics(summary).items()}
        lg.log_metrics(flat)
        if hasattr(lg, "experiment") and getattr(lg, "run_id", None):
            lg.experiment.log_artifacts(lg.run_id, str(out_dir))
        lg.finalize("success")

    print(_results_table(evaluations, folds))
    last = evaluations[-1]
    print("\nROI (training periods):")
    print(last.roi[["channel", "spend_inr", "contribution_inr", "roi", "marginal_roi", "adstock_decay"]].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    own = last.elasticities[(last.elasticities["level"] == "brand")]
    if len(own):
        print("\nElasticities by brand (mean over training rows):")
        print(own.pivot(index="unit", columns="feature", values="elasticity").to_string(float_format=lambda v: f"{v:.2f}"))
    if "recovery" in summary:
        print("\nRecovery of the generator's truth:", json.dumps({k: round(v, 4) for k, v in summary["recovery"].items()}))
    print(f"\nrun folder: {out_dir}")
    objective = cfg.get("objective", "test.r2")
    value = summary
    for part in objective.split("."):
        value = value[part]
    return float(value)


def _flat_metrics(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_metrics(v, key + "."))
        elif isinstance(v, (int, float)) and v == v:
            out[key.replace("%", "pct")] = float(v)
    return out


def _jsonable_summary(d):
    from nam_mmm.evaluation.report import _jsonable

    return _jsonable(d)
