"""The shape registry is the one source of what a component is passed: a network family registered with
``@register`` gets the model's hidden widths, dropout rate, L2 strength and soft-mode fallback from its class
attributes alone (``has_hidden_units``, ``takes_dropout``, ``takes_l2``, ``soft_fallback``), through the normal
``build_slots`` → ``HierarchicalNAM`` path; a parametric component gets none of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from nam_mmm.errors import ConfigError
from nam_mmm.models.nam import FeatureSlot, HierarchicalNAM
from nam_mmm.models.shapes import REGISTRY, ShapeFunction, build_shape, register
from nam_mmm.models.spec import build_slots

NET = "contract_test_net"  # registered only inside the fixtures below, removed afterwards
PARAMETRIC = "contract_test_parametric"
BRAND_HIDDEN, SKU_HIDDEN, DEFAULT_HIDDEN = 6, 4, 2  # the default differs, so a missing ``hidden`` shows
N_BRANDS, SKU_BRAND = 2, [0, 1, 1]
FEATURES = [
    {"name": "price", "role": "price", "transform": "log", "elasticity": True},
    {"name": "nps", "role": "nps", "transform": "none", "elasticity": False},
]


class ToyNet(ShapeFunction):
    """A throw-away network family: ``Σ_h a_h·tanh(w_h·x)``, hidden units maskable by dropout."""

    name = NET
    hparam_ranges = {"hidden": (1, 64), "dropout": (0.0, 0.9)}
    has_hidden_units = True
    takes_dropout = True
    soft_fallback = "mlp"

    def __init__(self, n_units: int, n_features: int, hidden: int = DEFAULT_HIDDEN, dropout: float = 0.0) -> None:
        super().__init__(n_units, n_features, hidden=hidden, dropout=dropout)
        h = int(hidden)
        self.a = self._param(h, 0.5)
        self.w = self._param(h, torch.linspace(0.5, 1.5, h))

    def _f(self, x, p):
        return (self._kept(p, p["a"]) * torch.tanh(p["w"] * x)).sum(-1, keepdim=True)


class ToyParametric(ShapeFunction):
    """A throw-away parametric family ``a·x`` with an L2 strength of its own (not the networks' one)."""

    name = PARAMETRIC
    hparam_ranges = {"init_a": (-10.0, 10.0), "l2": (0.0, 10.0)}

    def __init__(self, n_units: int, n_features: int, init_a: float = 0.1, l2: float = 0.0) -> None:
        super().__init__(n_units, n_features, init_a=init_a, l2=l2)
        self.a = self._param(1, init_a)

    def _f(self, x, p):
        return p["a"] * x


def _registered(cls: type[ShapeFunction]) -> Iterator[type[ShapeFunction]]:
    assert cls.name not in REGISTRY, f"test component name '{cls.name}' is taken"
    register(cls)
    try:
        yield cls
    finally:
        REGISTRY.pop(cls.name, None)


@pytest.fixture
def toy_net() -> Iterator[type[ShapeFunction]]:
    yield from _registered(ToyNet)


@pytest.fixture
def toy_parametric() -> Iterator[type[ShapeFunction]]:
    yield from _registered(ToyParametric)


def constraints(mode: str, component: str | None) -> dict:
    price = {"direction": "decreasing", "bounds": [-3.0, -0.5]}
    if component:
        price["component"] = component
    return {"mode": mode, "roles": {"price": price, "nps": {"direction": "none"}, "media": {"direction": "increasing", "concave": True}}}


def slots(component: str, mode: str = "hard", dropout: float = 0.0, mlp_l2: float = 1e-3) -> tuple[list[FeatureSlot], list[FeatureSlot]]:
    """``component`` on the price feature (fixed by its rule) and as the media response."""
    return build_slots(
        FEATURES, ["tv", "radio"], constraints(mode, component), component,
        brand_hidden=BRAND_HIDDEN, sku_hidden=SKU_HIDDEN, mlp_l2=mlp_l2, dropout=dropout,
    )


def scaler(n_features: int, n_channels: int) -> dict:
    n_skus = len(SKU_BRAND)
    return {
        "feature_names": [f["name"] for f in FEATURES][:n_features],
        "log_mask": [f["transform"] == "log" for f in FEATURES][:n_features],
        "center": [[7.0, 50.0][:n_features] for _ in range(n_skus)],
        "scale": [0.15, 4.0][:n_features],
        "media_scale": [1.0e6] * n_channels,
        "y_center": [16.0] * n_skus,
        "y_scale": 0.4,
        "media_max": [8.0] * n_channels,
    }


def build_model(fs: list[FeatureSlot], ms: list[FeatureSlot]) -> HierarchicalNAM:
    return HierarchicalNAM(fs, ms, N_BRANDS, len(SKU_BRAND), SKU_BRAND, scaler(len(fs), len(ms)))


def parts(model: HierarchicalNAM, name: str) -> list[tuple[ShapeFunction, ShapeFunction]]:
    return [(b, s) for b, s in zip(model.brand_parts, model.sku_parts) if b.name == name]


def test_registered_network_gets_hidden_units_and_dropout(toy_net) -> None:
    fs, ms = slots(NET, dropout=0.25)
    mine = [s for s in fs + ms if s.component == NET]
    assert [s.name for s in mine] == ["price", "tv", "radio"]
    for s in mine:
        assert s.brand_kwargs == {"hidden": BRAND_HIDDEN, "dropout": 0.25}, s.name
        assert s.sku_kwargs == {"hidden": SKU_HIDDEN, "dropout": 0.25}, s.name

    model = build_model(fs, ms)
    built = parts(model, NET)
    assert sum(b.n_features for b, _ in built) == 3
    for brand_part, sku_part in built:
        assert brand_part.hparams == {"hidden": BRAND_HIDDEN, "dropout": 0.25}
        assert sku_part.hparams == {"hidden": SKU_HIDDEN, "dropout": 0.25}
        assert brand_part.a.shape[-1] == BRAND_HIDDEN and sku_part.a.shape[-1] == SKU_HIDDEN

    # the rate is live in the model: training calls draw masks, evaluation does not
    n = 12
    gen = torch.Generator().manual_seed(0)
    price, nps = torch.exp(7.0 + 0.1 * torch.randn(n, generator=gen)), 50.0 + 4.0 * torch.randn(n, generator=gen)
    x = torch.stack([price, nps], dim=1)
    media = 1.0e6 * torch.rand(n, 2, 1, generator=gen)
    sku = torch.arange(n) % len(SKU_BRAND)
    brand = torch.as_tensor(SKU_BRAND)[sku]
    with torch.no_grad():
        model.train()
        torch.manual_seed(1)
        first = model(x, media, brand, sku)["pred"]
        second = model(x, media, brand, sku)["pred"]
        model.eval()
        assert torch.equal(model(x, media, brand, sku)["pred"], model(x, media, brand, sku)["pred"])
    assert not torch.allclose(first, second)


def test_registered_network_without_dropout_gets_no_dropout_key(toy_net) -> None:
    fs, ms = slots(NET, dropout=0.0)
    for s in (s for s in fs + ms if s.component == NET):
        assert s.brand_kwargs == {"hidden": BRAND_HIDDEN} and s.sku_kwargs == {"hidden": SKU_HIDDEN}
    for brand_part, sku_part in parts(build_model(fs, ms), NET):
        assert brand_part.hparams["dropout"] == 0.0 and brand_part.a.shape[-1] == BRAND_HIDDEN


def test_registered_network_falls_back_in_soft_mode(toy_net) -> None:
    fs, ms = slots(NET, mode="soft", dropout=0.25, mlp_l2=0.01)
    assert [s.component for s in ms] == ["mlp", "mlp"]  # the declared soft_fallback
    assert all(s.brand_kwargs == {"hidden": BRAND_HIDDEN, "dropout": 0.25, "l2": 0.01} for s in ms)
    assert fs[0].component == NET  # a component fixed by the rule is kept in both modes
    build_model(fs, ms)


@pytest.mark.parametrize("name", [PARAMETRIC, "hill", "beta_gamma", "exponential", "linear"])
def test_parametric_component_gets_no_hidden_units_dropout_or_l2(name: str, toy_parametric) -> None:
    fs, ms = slots(name, dropout=0.25, mlp_l2=0.5)
    mine = [s for s in fs + ms if s.component == name]
    assert len(mine) == 3
    assert all(s.brand_kwargs == {} and s.sku_kwargs == {} for s in mine)
    for brand_part, sku_part in parts(build_model(fs, ms), name):
        assert not {"hidden", "dropout"} & set(brand_part.hparams)
        assert brand_part.hparams.get("l2", 0.0) == 0.0 and sku_part.hparams.get("l2", 0.0) == 0.0


def test_l2_goes_to_components_declaring_it(toy_parametric) -> None:
    class ToyRidge(ToyParametric):
        name = "contract_test_ridge"
        takes_l2 = True

    for _ in _registered(ToyRidge):
        fs, ms = slots(ToyRidge.name, mlp_l2=0.5)
        assert all(s.brand_kwargs == {"l2": 0.5} for s in fs + ms if s.component == ToyRidge.name)
        # media kwargs win over the model-wide strength
        _, ms = build_slots(FEATURES, ["tv"], constraints("hard", None), ToyRidge.name, {"l2": 0.1}, mlp_l2=0.5)
        assert ms[0].brand_kwargs == {"l2": 0.1}
    assert ToyRidge.name not in REGISTRY


def test_existing_components_declare_their_needs() -> None:
    """The declarations that keep the slots of the built-in components exactly what they were."""
    nets = {"monotone_increasing", "monotone_decreasing", "concave_increasing", "mlp"}
    for name, cls in REGISTRY.items():
        assert cls.has_hidden_units == cls.takes_dropout == (name in nets), name
        assert cls.takes_l2 == (name == "mlp"), name
        assert cls.soft_fallback == ("mlp" if name in nets - {"mlp"} else None), name


def test_every_soft_fallback_is_a_registered_unconstrained_component() -> None:
    for name, cls in REGISTRY.items():
        if cls.soft_fallback is not None:
            fallback = REGISTRY[cls.soft_fallback]
            assert not fallback.guarantee and fallback.soft_fallback is None, name


def test_every_registered_component_builds_from_its_slots() -> None:
    """Whatever the registry holds, the kwargs the slot builder derives are accepted by the constructor."""
    for name in list(REGISTRY):
        for mode in ("hard", "soft"):
            fs, ms = slots(name, mode=mode, dropout=0.1)
            for s in fs + ms:
                build_shape(s.component, N_BRANDS, 1, **s.brand_kwargs)
                build_shape(s.component, len(SKU_BRAND), 1, **s.sku_kwargs)


@pytest.mark.parametrize(
    "attrs, message",
    [
        ({"has_hidden_units": False}, "has_hidden_units = False but 'hidden' is in hparam_ranges"),
        ({"takes_dropout": False}, "takes_dropout = False but 'dropout' is in hparam_ranges"),
        ({"takes_l2": True}, "takes_l2 needs 'l2'"),
        ({"soft_fallback": "contract_test_bad"}, "soft_fallback names the component itself"),
    ],
)
def test_register_rejects_undeclared_needs(attrs: dict, message: str) -> None:
    bad = type("Bad", (ToyNet,), {"name": "contract_test_bad", **attrs})
    with pytest.raises(TypeError, match=message):
        register(bad)
    assert "contract_test_bad" not in REGISTRY


def test_unknown_component_in_a_rule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"constraints\.roles\.price\.component: unknown shape component 'no_such_component'"):
        build_slots(FEATURES, [], constraints("hard", "no_such_component"), "hill")
