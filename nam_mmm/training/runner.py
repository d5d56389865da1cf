"""Fit one fold: datamodule → model config (slots + fold scaler) → LightningModule → Trainer.fit."""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightning as L

from nam_mmm.config import ModelSettings
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.models.nam import HierarchicalNAM
from nam_mmm.models.spec import build_slots
from nam_mmm.training.callbacks import BestWeights
from nam_mmm.training.module import NAMModule


def model_config(dm: PanelDataModule, settings: ModelSettings, constraints: dict) -> dict:
    """Constructor arguments of the HR-NAM for this fold (validated by building it once)."""
    features = [{"name": s.name, "role": s.role, "transform": s.transform, "elasticity": s.elasticity} for s in dm.feature_specs]
    feature_slots, media_slots = build_slots(
        features,
        dm.channels,
        constraints,
        settings.media_response,
        settings.media_kwargs,
        settings.brand_hidden,
        settings.sku_hidden,
        settings.mlp_l2,
        settings.dropout,
    )
    model = HierarchicalNAM(
        feature_slots,
        media_slots,
        dm.n_brands,
        dm.n_skus,
        dm.sku_brand.tolist(),
        dm.scaler.to_dict(),
        hier_mode=settings.hier_mode,
        hier_weight=settings.hier_weight,
        adstock_decay=[float(d) for d in dm.table.decay],
        learn_adstock=settings.learn_adstock,
        adstock_per_brand=settings.adstock_per_brand,
        grid_points=settings.grid_points,
        input_clamp=settings.input_clamp,
    )
    return model.to_dict()


@dataclass
class FitResult:
    module: NAMModule
    datamodule: PanelDataModule
    trainer: L.Trainer
    fit_seconds: float
    epochs: int
    best_epoch: int


def train_fold(table, fold, make_module, make_trainer, seed: int = 0, batch_size: int | None = None) -> FitResult:
    """Seed, build the fold's datamodule, module (``make_module(dm)``) and trainer (``make_trainer(fold, module)``),
    and fit: the one place a fold model is trained (walk-forward folds and the inner fits of
    :mod:`nam_mmm.training.selection`)."""
    L.seed_everything(seed, workers=True, verbose=False)
    dm = PanelDataModule(table, fold, batch_size=batch_size, seed=seed)
    module = make_module(dm)
    return fit_fold(dm, module, make_trainer(fold, module))


def fit_fold(dm: PanelDataModule, module: NAMModule, trainer: L.Trainer) -> FitResult:
    """Train ``module`` on the fold of ``dm``; the best validation weights are restored at the end."""
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    best = next((cb for cb in trainer.callbacks if isinstance(cb, BestWeights)), None)
    return FitResult(module, dm, trainer, seconds, trainer.current_epoch, best.best_epoch if best else trainer.current_epoch)
