"""The LightningModule: HR-NAM + composite loss, Adam with weight decay and ReduceLROnPlateau (seed §6.1)."""

from __future__ import annotations

import lightning as L
import torch

from nam_mmm.models.nam import HierarchicalNAM
from nam_mmm.training.loss import CompositeLoss, LossConfig, fit_loss


class NAMModule(L.LightningModule):
    """Trains a :class:`HierarchicalNAM` on full batches of a :class:`PanelDataModule`.

    Args:
        model_config: ``HierarchicalNAM.to_dict()`` (constructor arguments, including the fold's scaler).
        loss: :class:`LossConfig` fields.
        lr: Adam learning rate; ``weight_decay``: Adam weight decay (L2 on all weights).
        scheduler_factor / scheduler_patience: ReduceLROnPlateau on ``val/loss`` (patience in validations).
        min_lr: floor of the learning rate.
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = HierarchicalNAM.from_dict(model_config)
        self.loss_fn = CompositeLoss(LossConfig(**(loss or {})))

    def forward(self, batch: dict) -> dict:
        return self.model(batch["x"], batch["media"], batch["brand"], batch["sku"])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        terms = self.loss_fn(self.model, out, batch, self.current_epoch)
        n = int(batch["x"].shape[0])
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "total"}, on_step=False, on_epoch=True, batch_size=n)
        self.log("train/loss", terms["total"].detach(), on_step=False, on_epoch=True, batch_size=n)
        return terms["total"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        target = (batch["log_gmv"] - self.model.y_center[batch["sku"]]) / self.model.y_scale
        fit = fit_loss(out["pred"], target, batch["weight"], self.loss_fn.config.fit, self.loss_fn.config.huber_delta)
        w = batch["weight"] > 0
        actual, pred = batch["log_gmv"][w], out["log_gmv"][w]
        sst = ((actual - actual.mean()) ** 2).sum().clamp_min(1e-12)
        shape = {k: v for k, v in self.loss_fn(self.model, out, batch, self.current_epoch).items() if k.startswith("rate_")}
        n = int(w.sum())
        self.log("val/loss", fit, batch_size=n, prog_bar=False)
        self.log("val/r2_log", 1 - ((actual - pred) ** 2).sum() / sst, batch_size=n)
        self.log("val/mape", ((actual.exp() - pred.exp()).abs() / actual.exp()).mean() * 100, batch_size=n)
        self.log_dict({f"val/violation_{k[5:]}": v for k, v in shape.items()}, batch_size=n)
        if self.model.n_media:
            decay = self.model.adstock_decay().detach()
            decay = decay.mean(0) if decay.dim() > 1 else decay
            for slot, d in zip(self.model.slots[self.model.n_scalar :], decay, strict=True):
                self.log(f"adstock/{slot.name}", d, batch_size=n)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.hparams.scheduler_factor, patience=self.hparams.scheduler_patience, min_lr=self.hparams.min_lr
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "interval": "epoch", "frequency": 1, "strict": False}}
