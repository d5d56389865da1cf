"""The fold ensemble: the walk-forward fold models averaged (seed § wfo_ensemble).

Each member carries its own fold's scaling and takes raw inputs, so averaging is a plain mean of the
members' log-GMV predictions (a geometric mean of GMV); their spread is one measure of uncertainty.
"""

from __future__ import annotations

import torch
from torch import nn

from nam_mmm.models.nam import HierarchicalNAM


class FoldEnsemble(nn.Module):
    """Average of fold models. ``forward`` returns ``log_gmv`` (mean) and ``log_gmv_sd`` (spread across members)."""

    def __init__(self, members: list[HierarchicalNAM]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a fold ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, media: torch.Tensor, brand: torch.Tensor, sku: torch.Tensor) -> dict[str, torch.Tensor]:
        preds = torch.stack([m(x, media, brand, sku)["log_gmv"] for m in self.members])  # (M, N)
        sd = preds.std(0, unbiased=True) if len(self.members) > 1 else torch.zeros_like(preds[0])
        return {"log_gmv": preds.mean(0), "log_gmv_sd": sd}

    def to_dict(self) -> dict:
        return {"members": [{"config": m.to_dict(), "state": {k: v.cpu() for k, v in m.state_dict().items()}} for m in self.members]}

    @classmethod
    def from_dict(cls, d: dict) -> FoldEnsemble:
        return cls([HierarchicalNAM.from_dict(m["config"], m["state"]) for m in d["members"]])
