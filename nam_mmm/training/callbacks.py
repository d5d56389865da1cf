"""Lightning callbacks of the training loop."""

from __future__ import annotations

import math

import lightning as L


class BestWeights(L.Callback):
    """Keep the weights of the best validation score in memory and restore them when fitting ends.

    Cheaper than a checkpoint file per improvement on small panels (one file is written per run instead),
    and the model that is evaluated and saved is the early-stopped one, not the last epoch's.

    Args:
        monitor: logged metric to minimize (default ``val/loss``).
    """

    def __init__(self, monitor: str = "val/loss") -> None:
        self.monitor = monitor
        self.best_score = math.inf
        self.best_epoch = -1
        self._state: dict | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        score = float(value)
        if score < self.best_score:
            self.best_score = score
            self.best_epoch = trainer.current_epoch
            self._state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(self._state)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best_score = state_dict["best_score"]
        self.best_epoch = state_dict["best_epoch"]
