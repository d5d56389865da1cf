"""Elasticities and channel contributions in original units, by autograd through every transform.

* Elasticity of feature x for a row: ``d log GMV / d log x = x · d log GMV / d x`` with x in raw units
  (rupees, fractions, NPS points), differentiated through the log, the scaling and the shape functions.
* Media elasticity: the response of log GMV to a permanent proportional change of a channel's spend in every
  lag of the stack, ``Σ_l s_l · d log GMV / d s_l`` (through the adstock).
* Channel contribution: predicted GMV minus predicted GMV with that channel's spend at zero in every lag
  (interventional, in rupees, on the median prediction ``exp(log GMV)``).
* Marginal GMV: ``d Σ GMV / d κ`` where every spend of the channel is multiplied by κ (at κ = 1); divided
  by the spend it gives the marginal ROI at the observed spend.
"""

from __future__ import annotations

import torch

from nam_mmm.models.nam import HierarchicalNAM


def row_elasticities(model: HierarchicalNAM, x: torch.Tensor, media: torch.Tensor, brand: torch.Tensor, sku: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row elasticities: (N, F_scalar) for the scalar features and (N, C) for the media channels.

    Each row's prediction depends only on its own inputs, so one backward pass of the summed log GMV
    gives every row's gradient at once.
    """
    x = x.detach().clone().requires_grad_(True)
    media = media.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = model(x, media, brand, sku)
        gx, gm = torch.autograd.grad(out["log_gmv"].sum(), (x, media), allow_unused=True)
    el_x = (gx * x).detach() if gx is not None else torch.zeros_like(x)
    el_m = (gm * media).sum(-1).detach() if gm is not None else torch.zeros(media.shape[:2], dtype=x.dtype)
    return el_x, el_m


@torch.no_grad()
def channel_contributions(model: HierarchicalNAM, x: torch.Tensor, media: torch.Tensor, brand: torch.Tensor, sku: torch.Tensor) -> torch.Tensor:
    """(C,) rupees: Σ_rows [GMV(observed spend) − GMV(channel c at zero)], one batched pass per channel."""
    base = model(x, media, brand, sku)["log_gmv"].exp()
    out = []
    for c in range(media.shape[1]):  # one counterfactual per channel (C ≤ ~10), vectorized over rows
        m = media.clone()
        m[:, c, :] = 0.0
        out.append((base - model(x, m, brand, sku)["log_gmv"].exp()).sum())
    return torch.stack(out) if out else torch.zeros(0)


def marginal_gmv(model: HierarchicalNAM, x: torch.Tensor, media: torch.Tensor, brand: torch.Tensor, sku: torch.Tensor) -> torch.Tensor:
    """(C,) rupees per unit of κ: d Σ GMV / d κ_c with every spend of channel c scaled by κ_c (at 1)."""
    kappa = torch.ones(media.shape[1], dtype=media.dtype, requires_grad=True)
    with torch.enable_grad():
        gmv = model(x.detach(), media.detach() * kappa[None, :, None], brand, sku)["log_gmv"].exp().sum()
        (grad,) = torch.autograd.grad(gmv, kappa)
    return grad.detach()
