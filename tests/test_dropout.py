"""Hidden-unit dropout of the network components: the shape guarantees and the anchor hold for every mask
drawn while training, evaluation is deterministic and unchanged, and ``dropout: 0`` changes nothing at all."""

from __future__ import annotations

import json

import pytest
import torch

from nam_mmm.errors import ConfigError
from nam_mmm.models.shapes import ShapeFunction, build_shape
from nam_mmm.models.spec import build_slots

N_UNITS, N_FEATURES, GRID_POINTS = 3, 2, 2001
SHAPED = ["monotone_increasing", "monotone_decreasing", "concave_increasing"]
NETWORKS = [*SHAPED, "mlp"]


def make(name: str, dropout: float, seed: int = 0) -> ShapeFunction:
    """A component with randomly perturbed parameters (the same for every ``dropout`` at one seed), float64."""
    torch.manual_seed(seed)  # the constructor jitters from torch's RNG
    comp = build_shape(name, N_UNITS, N_FEATURES, dropout=dropout).double()
    gen = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for p in comp.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return comp


def rows(comp: ShapeFunction, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every unit's rows on a dense grid, in one ``forward`` batch: x (U·G, F) and unit (U·G,)."""
    g = torch.linspace(lo, hi, GRID_POINTS, dtype=torch.float64).unsqueeze(1).expand(GRID_POINTS, N_FEATURES)
    return g.repeat(N_UNITS, 1), torch.arange(N_UNITS).repeat_interleave(GRID_POINTS)


@pytest.mark.parametrize("name", SHAPED)
def test_shape_holds_for_every_training_mask(name: str) -> None:
    comp = make(name, dropout=0.5).train()
    lo, hi = (0.0, 50.0) if comp.nonnegative_input else (-20.0, 20.0)
    x, unit = rows(comp, lo, hi)
    curves = set()
    with torch.no_grad():
        for seed in range(8):
            torch.manual_seed(seed)
            v = comp(x, unit).reshape(N_UNITS, GRID_POINTS, N_FEATURES)
            curves.add(tuple(v[:, -1].flatten().tolist()))
            d1 = v[:, 1:] - v[:, :-1]
            tol = 1e-9 * v.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
            if name == "monotone_decreasing":
                assert float((d1 - tol).max()) <= 0, f"{name}: increases under training mask {seed}"
            else:
                assert float((d1 + tol).min()) >= 0, f"{name}: decreases under training mask {seed}"
            if name == "concave_increasing":
                d2 = d1[:, 1:] - d1[:, :-1]
                assert float((d2 - tol).max()) <= 0, f"{name}: convex somewhere under training mask {seed}"
    assert len(curves) > 1  # the masks really differed (otherwise this would test one curve eight times)


@pytest.mark.parametrize("name", NETWORKS)
def test_anchor_cancels_in_training_mode(name: str) -> None:
    comp = make(name, dropout=0.5).train()
    a = torch.full((N_UNITS, N_FEATURES), comp.anchor(), dtype=torch.float64)
    with torch.no_grad():
        for seed in range(5):
            torch.manual_seed(seed)
            assert torch.equal(comp(a, torch.arange(N_UNITS)), torch.zeros_like(a))
            assert torch.equal(comp.grid(a[:1]), torch.zeros(N_UNITS, 1, N_FEATURES, dtype=torch.float64))


@pytest.mark.parametrize("name", NETWORKS)
def test_eval_mode_is_deterministic_and_equals_no_dropout(name: str) -> None:
    comp, plain = make(name, dropout=0.5).eval(), make(name, dropout=0.0)
    plain.load_state_dict(comp.state_dict())
    x, unit = rows(comp, 0.0, 8.0)
    with torch.no_grad():
        first, second = comp(x, unit), comp(x, unit)
        assert torch.equal(first, second)
        assert torch.equal(first, plain.eval()(x, unit))
        assert torch.equal(first, plain.train()(x, unit))  # dropout 0 in training mode: the same too
        assert torch.equal(comp.grid(x[:50]), plain.grid(x[:50]))
        assert not torch.equal(comp.train()(x, unit), first)  # training mode does drop units


@pytest.mark.parametrize("name", NETWORKS)
def test_no_dropout_draws_no_random_numbers(name: str) -> None:
    """With dropout 0 seeded results stay as they were: training-mode calls leave torch's RNG untouched."""
    comp = make(name, dropout=0.0).train()
    x, unit = rows(comp, 0.0, 8.0)
    state = torch.get_rng_state()
    comp(x, unit).sum().backward()
    comp.grid(x[:50])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_kept_units_only(name: str) -> None:
    comp = make(name, dropout=0.5).train()
    x, unit = rows(comp, 0.0, 8.0)
    torch.manual_seed(0)
    comp(x, unit).pow(2).sum().backward()
    dropped = comp.a.grad == 0
    assert dropped.any() and not dropped.all()


@pytest.mark.parametrize("name", NETWORKS)
def test_dropout_round_trips_and_old_dicts_load(name: str) -> None:
    comp = make(name, dropout=0.3)
    d = json.loads(json.dumps(comp.to_dict()))
    assert ShapeFunction.from_dict(d).hparams["dropout"] == 0.3
    del d["hparams"]["dropout"]  # saved before dropout existed
    old = ShapeFunction.from_dict(d)
    assert old.hparams["dropout"] == 0.0
    x, unit = rows(comp, 0.0, 8.0)
    state = torch.get_rng_state()
    old.train()(x.float(), unit)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("name", NETWORKS)
def test_dropout_out_of_range_raises(name: str) -> None:
    with pytest.raises(ConfigError, match="dropout"):
        build_shape(name, N_UNITS, N_FEATURES, dropout=1.5)


@pytest.mark.parametrize("name", ["hill", "beta_gamma", "exponential", "linear"])
def test_parametric_components_have_no_dropout(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown hyper-parameter.*dropout"):
        build_shape(name, N_UNITS, N_FEATURES, dropout=0.1)


def test_build_slots_gives_dropout_to_networks_only() -> None:
    constraints = {"roles": {"price": {"direction": "decreasing"}, "nps": {}, "media": {"concave": True}}}
    features = [{"name": "price", "role": "price"}, {"name": "nps", "role": "nps"}]
    slots = [s for group in build_slots(features, ["tv"], constraints, "hill", dropout=0.2) for s in group]
    assert {s.name: s.brand_kwargs.get("dropout") for s in slots} == {"price": 0.2, "nps": 0.2, "tv": None}
    assert all(s.sku_kwargs.get("dropout") == s.brand_kwargs.get("dropout") for s in slots)
    # dropout 0: the slot configs (saved with every model) are exactly what they were before dropout existed
    plain = [s for group in build_slots(features, ["tv", "radio"], constraints, "concave_increasing") for s in group]
    assert all("dropout" not in s.brand_kwargs and "dropout" not in s.sku_kwargs for s in plain)
