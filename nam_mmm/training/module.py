"""The LightningModule: HR-NAM + composite loss, Adam with weight decay, ReduceLROnPlateau (seed §6.1),
and the optimization strategies of seed §6.6 (joint, coordinate, block, hybrid).

Optimization is manual so that a strategy decides, step by step, which parameters move; logging,
early stopping, checkpointing and MLflow behave the same for every strategy. Each unit of the strategy
(a feature, a block, the biases, or everything) has its own Adam optimizer, so momentum never carries
one unit's updates into another's.
"""

from __future__ import annotations

import lightning as L
import torch

from nam_mmm.errors import TrainingError
from nam_mmm.models.nam import HierarchicalNAM
from nam_mmm.training.loss import CompositeLoss, LossConfig, fit_loss, shape_terms
from nam_mmm.training.strategies import ALL_UNIT, BIAS_UNIT, PHASE_CODES, build_strategy


class NAMModule(L.LightningModule):
    """Trains a :class:`HierarchicalNAM` on batches of a :class:`PanelDataModule`.

    Args:
        model_config: ``HierarchicalNAM.to_dict()`` (constructor arguments, including the fold's scaler).
        loss: :class:`LossConfig` fields.
        lr: Adam learning rate; ``weight_decay``: Adam weight decay.
        scheduler_factor / scheduler_patience: ReduceLROnPlateau on ``val/loss`` (patience in validations).
        min_lr: floor of the learning rate.
        gradient_clip_val: clip the gradient norm of the active unit at this value (None = off).
        strategy: ``{"name": joint|coordinate|block|hybrid, "inner_iterations", "split", "blocks"}``.
        max_epochs: training length, for the hybrid phase boundaries.
        log_every_n_epochs: training loss terms (of the epoch's first batch) are logged every this many epochs.
    """

    def __init__(
        self,
        model_config: dict,
        loss: dict | None = None,
        lr: float = 0.02,
        weight_decay: float = 1e-5,
        scheduler_factor: float = 0.5,
        scheduler_patience: int = 5,
        min_lr: float = 1e-4,
        gradient_clip_val: float | None = 1.0,
        strategy: dict | None = None,
        max_epochs: int = 1000,
        log_every_n_epochs: int = 5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.model = HierarchicalNAM.from_dict(model_config)
        self.loss_fn = CompositeLoss(LossConfig(**(loss or {})))
        spec = dict(strategy or {"name": "joint"})
        spec.pop("description", None)
        self.strategy = build_strategy(spec.pop("name", "joint"), self.model.slots, max_epochs, **spec)
        self.unit_names = [ALL_UNIT] if self.strategy.name == "joint" else list(dict.fromkeys([*self.strategy.coordinate_units, *self.strategy.block_units, ALL_UNIT]))
        self._masks = {u: self._unit_masks(u) for u in self.unit_names}
        # component groups whose curves a unit can change (the others' penalties are constants for its step)
        self._groups = {u: None if u == ALL_UNIT else self.model.groups_of(self.strategy.units[u]) for u in self.unit_names}

    def _unit_masks(self, unit: str):
        if unit == ALL_UNIT:
            return [(p, None) for p in self.model.parameters()]
        return self.model.parameter_masks(self.strategy.units[unit], include_bias=unit == BIAS_UNIT)

    def forward(self, batch: dict) -> dict:
        return self.model(batch["x"], batch["media"], batch["brand"], batch["sku"])

    # ------------------------------------------------------------------ training
    def _step_unit(self, unit: str, opt, batch: dict, rates: bool = False) -> dict:
        """One optimizer step on one unit; nothing outside the unit changes."""
        masks = self._masks[unit]
        inside = {id(p) for p, _ in masks}
        frozen = [p for p in self.model.parameters() if id(p) not in inside]
        for p in frozen:  # outside the unit: no gradient, and autograd skips their branches of the graph
            p.requires_grad_(False)
            p.grad = None  # Adam skips parameters without a gradient: no momentum, no weight decay
        try:
            out = self(batch)
            groups = None if rates else self._groups[unit]  # logged steps compute every term in full
            terms = self.loss_fn(self.model, out, batch, self.current_epoch, rates=rates, groups=groups)
            if not torch.isfinite(terms["total"]):
                self._diverged(unit, terms, opt)
            opt.zero_grad(set_to_none=True)
            self.manual_backward(terms["total"])
        finally:
            for p in frozen:
                p.requires_grad_(True)
        partial = [(p, m) for p, m in masks if m is not None]
        for p, m in partial:
            if p.grad is not None:
                p.grad.mul_(m.to(p.grad.device))
        if self.hparams.gradient_clip_val:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
        saved = [p.detach().clone() for p, _ in partial]
        opt.step()
        with torch.no_grad():
            for (p, m), old in zip(partial, saved, strict=True):
                p.copy_(torch.where(m.to(p.device), p, old))  # entries of other features stay bit-identical
        return terms

    def _diverged(self, unit: str, terms: dict, opt) -> None:
        bad = [k for k, v in terms.items() if k != "total" and not bool(torch.isfinite(v).all())]
        lr = opt.param_groups[0]["lr"]
        raise TrainingError(
            f"training diverged at epoch {self.current_epoch} ({unit} step): loss term(s) {', '.join(bad) or 'total'} "
            f"not finite; lower optimizer.lr (now {lr:g}) or optimizer.gradient_clip_val, or check the data"
        )

    def training_step(self, batch: dict, batch_idx: int) -> None:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        by_unit = dict(zip(self.unit_names, optimizers, strict=True))
        epoch = self.current_epoch
        units = self.strategy.units_at(epoch)
        steps = 1 if units == [ALL_UNIT] else self.strategy.inner_iterations
        log_now = (epoch + 1) % self.hparams.log_every_n_epochs == 0  # log() costs about as much as a small step
        for k, unit in enumerate(units):  # the strategy's units in order (one for joint); each its own optimizer
            for i in range(steps):
                last = k == len(units) - 1 and i == steps - 1
                terms = self._step_unit(unit, by_unit[unit], batch, rates=log_now and last)
        if not log_now or batch_idx != 0:
            return
        # straight to the loggers: nothing monitors these terms, and Lightning's log() bookkeeping costs
        # about as much as a training step on a small panel
        logged = {f"train/{k}": float(v.detach()) for k, v in terms.items() if k != "total"}
        logged["train/loss"] = float(terms["total"].detach())
        logged["train/phase"] = float(PHASE_CODES[self.strategy.phase_at(epoch).kind])
        logged["epoch"] = float(epoch)
        for logger in self.loggers:
            logger.log_metrics(logged, step=self.global_step)

    def on_train_epoch_start(self) -> None:
        warm = self.strategy.warm_epochs
        if warm and self.current_epoch == warm:  # the last phase starts: early stopping judges it afresh
            for cb in self.trainer.early_stopping_callbacks:
                cb.wait_count = 0
                cb.best_score = torch.tensor(torch.inf if cb.mode == "min" else -torch.inf)
            self.trainer.should_stop = False

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        target = (batch["log_gmv"] - self.model.y_center[batch["sku"]]) / self.model.y_scale
        fit = fit_loss(out["pred"], target, batch["weight"], self.loss_fn.config.fit, self.loss_fn.config.huber_delta)
        w = batch["weight"] > 0
        actual, pred = batch["log_gmv"][w], out["log_gmv"][w]
        sst = ((actual - actual.mean()) ** 2).sum().clamp_min(1e-12)
        shape = {k: v for k, v in shape_terms(self.model, self.loss_fn.config, rates=True).items() if k.startswith("rate_")}
        n = max(int(w.sum()), 1)
        self.log("val/loss", fit, batch_size=n)
        self.log("val/r2_log", 1 - ((actual - pred) ** 2).sum() / sst, batch_size=n)
        self.log("val/mape", ((actual.exp() - pred.exp()).abs() / actual.exp()).mean() * 100, batch_size=n)
        self.log_dict({f"val/violation_{k[5:]}": v for k, v in shape.items()}, batch_size=n)
        if self.model.n_media:
            decay = self.model.adstock_decay().detach()
            decay = decay.mean(0) if decay.dim() > 1 else decay
            for slot, d in zip(self.model.slots[self.model.n_scalar :], decay, strict=True):
                self.log(f"adstock/{slot.name}", d, batch_size=n)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return  # the learning-rate schedule only moves while fitting
        value = self.trainer.callback_metrics.get("val/loss")
        if value is None:
            return
        schedulers = self.lr_schedulers()
        for sch in schedulers if isinstance(schedulers, list) else [schedulers]:
            sch.step(float(value))

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for unit in self.unit_names:
            params = [p for p, _ in self._masks[unit]]
            opt = torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, foreach=True)
            optimizers.append(opt)
            schedulers.append(
                torch.optim.lr_scheduler.ReduceLROnPlateau(
                    opt, mode="min", factor=self.hparams.scheduler_factor, patience=self.hparams.scheduler_patience, min_lr=self.hparams.min_lr
                )
            )
        return optimizers, schedulers
