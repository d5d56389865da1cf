"""The hierarchical NAM: vectorized hierarchy against a slow per-row reference, golden elasticities, autograd
against finite differences in raw units, contributions and marginal GMV, whole-model shape guarantees,
persistence and adstock."""

from __future__ import annotations

import copy
import json
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from helpers import REPO_ROOT, load_run, train_in_process
from nam_mmm.models.elasticity import channel_contributions, marginal_gmv, row_elasticities
from nam_mmm.models.nam import HierarchicalNAM
from nam_mmm.models.spec import build_slots
from nam_mmm.training.loss import LossConfig, shape_terms

HARD = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf/constraints/hard.yaml"))
FEATURES = [
    {"name": "price", "role": "own_price", "transform": "log", "elasticity": True},
    {"name": "cross_price", "role": "cross_price", "transform": "log", "elasticity": True},
    {"name": "discount", "role": "discount", "transform": "none", "elasticity": True},
    {"name": "nps", "role": "brand_health", "transform": "none", "elasticity": False},
    {"name": "month_sin", "role": "seasonality", "transform": "none", "elasticity": False},
]
CHANNELS = ["tv", "search", "social"]
MAX_LAG = 3
MEDIA_SCALE = [2.0e6, 5.0e5, 1.0e6]  # mean spend per period, rupees


def make_scaler(n_skus: int, features: list[dict], channels: list[str], rng: np.random.Generator) -> dict:
    """A fitted-scaler dict as ``FittedScaler.to_dict()`` writes it (per-SKU centres, global scales)."""
    log_mask = [f["transform"] == "log" for f in features]
    base = {"price": 7.0, "cross_price": 7.0, "discount": 0.2, "nps": 50.0, "month_sin": 0.0}
    center = np.array([[base[f["name"]] + (0.3 if f["transform"] == "log" else 0.02) * rng.standard_normal() for f in features] for _ in range(n_skus)])
    scale = {"price": 0.15, "cross_price": 0.1, "discount": 0.08, "nps": 4.0, "month_sin": 0.7}
    return {
        "feature_names": [f["name"] for f in features],
        "log_mask": log_mask,
        "center": center.tolist(),
        "scale": [scale[f["name"]] for f in features],
        "media_scale": MEDIA_SCALE[: len(channels)],
        "y_center": (16.0 + rng.standard_normal(n_skus)).tolist(),
        "y_scale": 0.4,
        "media_max": [float(MAX_LAG + 1) * 2.0] * len(channels),
    }


def make_model(
    n_brands: int,
    skus_per_brand: int,
    *,
    constraints: dict = HARD,
    media_response: str = "hill",
    features: list[dict] = FEATURES,
    channels: list[str] = CHANNELS,
    seed: int = 0,
    perturb: float = 0.5,
    shuffle_brands: bool = True,
    **kwargs,
) -> HierarchicalNAM:
    """A hand-built HR-NAM; every parameter perturbed (shapes still hold by construction) so units differ."""
    rng = np.random.default_rng(seed)
    n_skus = n_brands * skus_per_brand
    sku_brand = np.repeat(np.arange(n_brands), skus_per_brand)
    if shuffle_brands:  # SKUs of a brand need not be contiguous
        sku_brand = rng.permutation(sku_brand)
    fs, ms = build_slots(features, channels, constraints, media_response, brand_hidden=6, sku_hidden=4)
    kwargs.setdefault("adstock_decay", [0.3, 0.5, 0.7][: len(channels)])
    model = HierarchicalNAM(fs, ms, n_brands, n_skus, sku_brand.tolist(), make_scaler(n_skus, features, channels, rng), **kwargs)
    if perturb:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * perturb)
    return model


def make_rows(model: HierarchicalNAM, n_rows: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Raw-unit rows: prices in rupees around each SKU's centre, fractions, NPS points, spend lag stacks."""
    rng = np.random.default_rng(seed + 100)
    sku = np.concatenate([np.arange(model.n_skus), rng.integers(0, model.n_skus, max(n_rows - model.n_skus, 0))])[:n_rows]
    center = model.center.double().numpy()[sku]
    scale = model.scale.double().numpy()
    t = center + scale * rng.standard_normal((n_rows, model.n_scalar)) * 1.5
    log_mask = model.log_mask.numpy()
    x = np.where(log_mask, np.exp(t), t)
    names = model.feature_names
    if "discount" in names:
        j = names.index("discount")
        x[:, j] = np.clip(x[:, j], 0.0, 0.9)
    media = rng.uniform(0.0, 2.0, (n_rows, model.n_media, MAX_LAG + 1)) * model.media_scale.double().numpy()[None, :, None]
    media[rng.random((n_rows, model.n_media, MAX_LAG + 1)) < 0.1] = 0.0  # some dark periods
    dtype = torch.get_default_dtype()
    sku_t = torch.as_tensor(sku, dtype=torch.long)
    return {"x": torch.as_tensor(x, dtype=dtype), "media": torch.as_tensor(media, dtype=dtype), "brand": model.sku_brand[sku_t], "sku": sku_t}


def fwd(model: HierarchicalNAM, rows: dict, **changes) -> dict:
    r = {**rows, **changes}
    return model(r["x"], r["media"], r["brand"], r["sku"])


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


# ---------------------------------------------------------------------------------------------- hierarchy
def reference_row(model: HierarchicalNAM, x: np.ndarray, media: np.ndarray, b: int, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slow reference for one row: scaling and adstock by hand in numpy, then this row's brand and SKU functions
    evaluated one at a time. Returns (z, brand_part, sku_part) with the hierarchy weights applied."""
    log_mask = model.log_mask.numpy()
    t = np.where(log_mask, np.log(np.where(log_mask, x, 1.0)), x)
    z_scalar = (t - model.center.double().numpy()[s]) / model.scale.double().numpy()
    decay = torch.sigmoid(model.adstock_logit).detach().double().numpy()
    d = decay[b] if model.adstock_per_brand else decay[0]
    weights = d[:, None] ** np.arange(media.shape[-1])[None, :]
    z_media = (media * weights).sum(-1) / model.media_scale.double().numpy()
    z = np.concatenate([z_scalar, z_media])
    f_brand, f_sku = np.zeros(len(z)), np.zeros(len(z))
    for g in range(model.n_groups):
        idx = getattr(model, f"group_idx_{g}").tolist()
        zg = torch.as_tensor(z[idx], dtype=torch.get_default_dtype()).unsqueeze(0)  # a 1-point grid
        with torch.no_grad():
            f_brand[idx] = model.brand_parts[g].grid(zg)[b, 0].double().numpy()
            f_sku[idx] = model.sku_parts[g].grid(zg)[s, 0].double().numpy()
    if model.hier_mode == "weighted":
        w = model.hier_weight
        return z, w * f_brand, (1 - w) * f_sku
    return z, f_brand, f_sku


@pytest.mark.parametrize(("hier_mode", "per_brand"), [("weighted", False), ("deviation", True)])
def test_vectorized_forward_equals_per_row_reference(hier_mode: str, per_brand: bool, float64) -> None:
    """1000 SKUs in 50 brands, one forward pass: every sampled row equals its brand's and SKU's own functions."""
    model = make_model(50, 20, hier_mode=hier_mode, hier_weight=0.65, adstock_per_brand=per_brand, seed=1)
    rows = make_rows(model, 3000, seed=1)
    calls = {"n": 0}
    hooks = [m.register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1)) for m in [*model.brand_parts, *model.sku_parts]]
    with torch.no_grad():
        out = fwd(model, rows)
    for h in hooks:
        h.remove()
    # vectorized: one call per component stack, never per SKU, brand or feature
    assert calls["n"] == 2 * model.n_groups < 2 * len(model.slots)
    assert out["pred"].shape == (3000,) and out["contrib"].shape == (3000, len(model.slots))

    sample = np.r_[0, 999, 2999, np.random.default_rng(0).choice(3000, 150, replace=False)]
    x, media = rows["x"].numpy(), rows["media"].numpy()
    for i in sample:
        b, s = int(rows["brand"][i]), int(rows["sku"][i])
        assert b == int(model.sku_brand[s])
        z, bp, sp = reference_row(model, x[i], media[i], b, s)
        np.testing.assert_allclose(out["z"][i].numpy(), z, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["brand_part"][i].numpy(), bp, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["sku_part"][i].numpy(), sp, rtol=1e-10, atol=1e-12)
        pred = float((model.bias_brand[b] + model.bias_sku[s]).detach()) + (bp + sp).sum()
        np.testing.assert_allclose(float(out["pred"][i]), pred, rtol=1e-10)
    # additivity on every row: contributions + biases = prediction, and log GMV undoes the target scaling
    biases = model.bias_brand[rows["brand"]] + model.bias_sku[rows["sku"]]
    torch.testing.assert_close(out["contrib"].sum(1) + biases.detach(), out["pred"])
    torch.testing.assert_close(out["contrib"], out["brand_part"] + out["sku_part"])
    torch.testing.assert_close(out["log_gmv"], model.y_center[rows["sku"]] + model.y_scale * out["pred"])


def test_units_really_differ_so_the_reference_can_fail(float64) -> None:
    """Guard for the test above: swapping two SKUs' rows changes predictions (parameters are not all equal)."""
    model = make_model(50, 20, seed=1)
    rows = make_rows(model, 200, seed=1)
    with torch.no_grad():
        a = fwd(model, rows)["pred"]
        b = fwd(model, rows, sku=(rows["sku"] + 1) % model.n_skus)["pred"]
    assert float((a - b).abs().min()) > 1e-6


def test_curves_are_the_rows_functions(float64) -> None:
    """``curves()`` (penalties, plots) evaluates the same combined function as the forward pass."""
    model = make_model(3, 4, seed=2, hier_weight=0.8)
    rows = make_rows(model, 12, seed=2)  # one row per SKU
    with torch.no_grad():
        out = fwd(model, rows)
        c = model.curves(out["z"])  # grid = the rows' own inputs: (S, 12, F)
    diag = c["combined"][rows["sku"], torch.arange(12)]
    torch.testing.assert_close(diag, out["contrib"])


# ---------------------------------------------------------------------------------------------- golden elasticities
GOLDEN_FEATURES = [
    {"name": "price", "role": "own_price", "transform": "log", "elasticity": True},
    {"name": "promo_days", "role": "promo", "transform": "none", "elasticity": True},
]


def _set_slope(model: HierarchicalNAM, level: str, unit: int, feature: str, slope: float) -> None:
    j = model.feature_names.index(feature)
    for g in range(model.n_groups):
        idx = getattr(model, f"group_idx_{g}").tolist()
        if j in idx:
            part = (model.brand_parts if level == "brand" else model.sku_parts)[g]
            with torch.no_grad():
                part.c[unit, idx.index(j), 0] = slope
            return
    raise AssertionError(feature)


def test_golden_two_sku_elasticities() -> None:
    """One brand, two SKUs, linear shapes: own-price elasticity = y_scale · (w·c_brand + (1−w)·c_sku) / scale.

    y_scale 0.5, log-price scale 0.2, w 0.7, c_brand −0.4, c_sku (−1.0, 0.0):
    SKU 0: 2.5 · (−0.28 − 0.30) = −1.45; SKU 1: 2.5 · (−0.28 + 0) = −0.70, at every price.
    """
    constraints = copy.deepcopy(HARD)
    constraints["roles"]["own_price"]["component"] = "linear"
    constraints["roles"]["promo"]["component"] = "linear"
    fs, ms = build_slots(GOLDEN_FEATURES, ["tv"], constraints, "linear")
    assert [s.component for s in fs + ms] == ["linear"] * 3
    scaler = {
        "feature_names": ["price", "promo_days"],
        "log_mask": [True, False],
        "center": [[np.log(1000.0), 3.0], [np.log(250.0), 3.0]],
        "scale": [0.2, 2.0],
        "media_scale": [1.0e6],
        "y_center": [15.0, 13.0],
        "y_scale": 0.5,
        "media_max": [4.0],
    }
    model = HierarchicalNAM(fs, ms, 1, 2, [0, 0], scaler, hier_weight=0.7, adstock_decay=[0.5], learn_adstock=False)
    _set_slope(model, "brand", 0, "price", -0.4)
    _set_slope(model, "sku", 0, "price", -1.0)
    _set_slope(model, "sku", 1, "price", 0.0)
    _set_slope(model, "brand", 0, "promo_days", 0.2)
    _set_slope(model, "sku", 0, "promo_days", 0.1)
    _set_slope(model, "sku", 1, "promo_days", -0.1)
    _set_slope(model, "brand", 0, "tv", 0.3)
    _set_slope(model, "sku", 0, "tv", 0.1)
    _set_slope(model, "sku", 1, "tv", 0.5)

    prices = torch.tensor([600.0, 1000.0, 1800.0, 120.0, 250.0, 700.0])
    promo = torch.tensor([0.0, 2.0, 7.0, 1.0, 4.0, 6.0])
    sku = torch.tensor([0, 0, 0, 1, 1, 1])
    spend = torch.tensor([[4.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 8.0], [2.0, 0.0, 2.0], [1.0, 3.0, 0.0], [0.5, 0.5, 0.5]]) * 1e6
    el_x, el_m = row_elasticities(model, torch.stack([prices, promo], 1), spend.unsqueeze(1), torch.zeros(6, dtype=torch.long), sku)

    own_price = torch.tensor([-1.45] * 3 + [-0.70] * 3)
    torch.testing.assert_close(el_x[:, 0], own_price, rtol=1e-5, atol=1e-6)
    # identity-transformed promo days: x · y_scale · slope / scale; slopes 0.7·0.2 + 0.3·(0.1 | −0.1) = 0.17 | 0.11
    promo_slope = torch.tensor([0.17] * 3 + [0.11] * 3)
    torch.testing.assert_close(el_x[:, 1], promo * 0.5 * promo_slope / 2.0, rtol=1e-5, atol=1e-6)
    # linear media on adstocked spend (decay 0.5): Σ_l s_l ∂/∂s_l = y_scale · slope · adstock / media_scale
    adstock = (spend * torch.tensor([1.0, 0.5, 0.25])).sum(1)
    tv_slope = torch.tensor([0.7 * 0.3 + 0.3 * 0.1] * 3 + [0.7 * 0.3 + 0.3 * 0.5] * 3)
    torch.testing.assert_close(el_m[:, 0], 0.5 * tv_slope * adstock / 1e6, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------- autograd vs FD
def test_elasticities_match_finite_differences_in_raw_units(float64) -> None:
    """d log GMV / d log x by autograd equals a central difference on raw prices, fractions, NPS points and
    whole lag stacks of spend (learned per-brand adstock, every parameter perturbed)."""
    model = make_model(3, 2, seed=4, adstock_per_brand=True, perturb=0.7)
    rows = make_rows(model, 24, seed=4)
    el_x, el_m = row_elasticities(model, rows["x"], rows["media"], rows["brand"], rows["sku"])
    h = 1e-5

    def log_gmv(**changes):
        with torch.no_grad():
            return fwd(model, rows, **changes)["log_gmv"]

    checked = 0
    for j in range(model.n_scalar):
        up, down = rows["x"].clone(), rows["x"].clone()
        up[:, j] *= 1 + h
        down[:, j] *= 1 - h
        fd = (log_gmv(x=up) - log_gmv(x=down)) / (2 * h)
        err = (el_x[:, j] - fd).abs()
        assert (err <= 1e-3 * fd.abs() + 1e-9).all(), f"{model.feature_names[j]}: max error {float(err.max()):.3g}"
        checked += int((fd.abs() > 1e-6).sum())
    for c in range(model.n_media):
        up, down = rows["media"].clone(), rows["media"].clone()
        up[:, c, :] *= 1 + h
        down[:, c, :] *= 1 - h
        fd = (log_gmv(media=up) - log_gmv(media=down)) / (2 * h)
        err = (el_m[:, c] - fd).abs()
        assert (err <= 1e-3 * fd.abs() + 1e-9).all(), f"media {CHANNELS[c]}: max error {float(err.max()):.3g}"
        checked += int((fd.abs() > 1e-6).sum())
    assert checked > 0.8 * 24 * (model.n_scalar + model.n_media)  # mostly non-trivial elasticities


def test_channel_contributions_and_marginal_gmv_by_hand(float64) -> None:
    model = make_model(2, 3, seed=5, perturb=0.5)
    rows = make_rows(model, 30, seed=5)
    contrib = channel_contributions(model, rows["x"], rows["media"], rows["brand"], rows["sku"])
    marginal = marginal_gmv(model, rows["x"], rows["media"], rows["brand"], rows["sku"])
    with torch.no_grad():
        gmv = fwd(model, rows)["log_gmv"].exp()
        h = 1e-5
        for c in range(model.n_media):
            zeroed = rows["media"].clone()
            zeroed[:, c, :] = 0.0
            by_hand = (gmv - fwd(model, rows, media=zeroed)["log_gmv"].exp()).sum()
            torch.testing.assert_close(contrib[c], by_hand, rtol=1e-10, atol=1e-6)
            assert float(contrib[c]) > 0  # hill media: spending something adds GMV
            up, down = rows["media"].clone(), rows["media"].clone()
            up[:, c, :] *= 1 + h
            down[:, c, :] *= 1 - h
            fd = (fwd(model, rows, media=up)["log_gmv"].exp().sum() - fwd(model, rows, media=down)["log_gmv"].exp().sum()) / (2 * h)
            torch.testing.assert_close(marginal[c], fd, rtol=1e-6, atol=1e-6)
    # diminishing returns: the last rupee earns less than the average rupee. Concave media with f(0) = 0 give
    # x·f'(x) <= f(x) on log GMV; exp() could undo that for very large effects, not at these sizes (< 1 log point)
    assert (marginal < contrib).all()


# ---------------------------------------------------------------------------------------------- whole-model shapes
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple:
    """A tiny real run (hard constraints, Hill media, 30 epochs) through the code ``train.py`` calls."""
    out = tmp_path_factory.mktemp("tiny_hard")
    train_in_process(out)
    return (out, *load_run(out))


def dense_model_grid(model: HierarchicalNAM, points: int = 4001) -> torch.Tensor:
    """Scalar features ±20 training sd (training data lives within about ±3); media 0 … 10 × media_max."""
    u = torch.linspace(0.0, 1.0, points, dtype=torch.float64).unsqueeze(1)
    scalar = (40.0 * u - 20.0).expand(points, model.n_scalar)
    media = 10.0 * u * model.media_max.double().unsqueeze(0)
    return torch.cat([scalar, media], 1)


def assert_model_shapes(model: HierarchicalNAM, where: str) -> None:
    model = copy.deepcopy(model).double()
    with torch.no_grad():
        combined = model.curves(dense_model_grid(model))["combined"]  # (S, G, F)
    tol = 1e-9 * combined.abs().amax(dim=1).clamp_min(1e-12)  # (S, F)
    d1 = combined[:, 1:] - combined[:, :-1]
    d2 = d1[:, 1:] - d1[:, :-1]
    roles = [s.role for s in model.slots]
    assert "own_price" in roles and "media" in roles
    for j, slot in enumerate(model.slots):
        if slot.role == "own_price":
            assert slot.direction == -1
        if slot.role == "media":
            assert slot.direction == 1 and slot.concave
        if slot.direction:
            worst = float((-slot.direction * d1[:, :, j] - tol[:, None, j]).max())
            assert worst <= 0, f"{where}: {slot.name} goes the wrong way by {worst:.3g}"
        if slot.concave:
            worst = float((d2[:, :, j] - tol[:, None, j]).max())
            assert worst <= 0, f"{where}: {slot.name} is convex somewhere ({worst:.3g})"


def test_hard_constraints_hold_on_the_whole_model_at_init() -> None:
    assert_model_shapes(make_model(3, 3, seed=6, perturb=0.0), "default init")
    assert_model_shapes(make_model(3, 3, seed=6, perturb=2.0), "random parameters")
    assert_model_shapes(make_model(3, 3, seed=7, perturb=2.0, media_response="concave_increasing"), "random, concave network media")


def test_hard_constraints_hold_after_training(trained_run) -> None:
    _, _, _, module = trained_run
    model = module.model
    assert_model_shapes(model, "after training")
    terms = shape_terms(model, LossConfig())
    assert float(terms["rate_monotone"]) == 0.0 and float(terms["rate_concave"]) == 0.0


def test_trained_model_elasticities_have_the_promised_signs(trained_run) -> None:
    """What a user reads: own-price elasticities ≤ 0 and media elasticities ≥ 0 on every training row."""
    _, _, dm, module = trained_run
    b = dm.splits["train"]
    el_x, el_m = row_elasticities(module.model, b["x"], b["media"], b["brand"], b["sku"])
    price = module.model.feature_names.index("price")
    assert (el_x[:, price] <= 0).all() and (el_m >= 0).all()
    assert float(el_x[:, price].abs().max()) > 0 and float(el_m.max()) > 0


# ---------------------------------------------------------------------------------------------- persistence, adstock
def test_to_dict_from_dict_round_trip_predicts_identically() -> None:
    model = make_model(3, 2, seed=8, adstock_per_brand=True, hier_mode="deviation")
    rows = make_rows(model, 40, seed=8)
    config = json.loads(json.dumps(model.to_dict()))  # constructor arguments are JSON
    clone = HierarchicalNAM.from_dict(config, model.state_dict())
    with torch.no_grad():
        a, b = fwd(model, rows), fwd(clone, rows)
    for key in ("log_gmv", "contrib", "z"):
        assert torch.equal(a[key], b[key])
    assert clone.feature_names == model.feature_names and clone.hier_mode == "deviation"
    # without the weights, the clone is a fresh model: predictions differ (the round trip really carried them)
    with torch.no_grad():
        fresh = fwd(HierarchicalNAM.from_dict(config), rows)["log_gmv"]
    assert not torch.equal(fresh, a["log_gmv"])


def test_saved_checkpoint_reproduces_the_run_predictions(trained_run) -> None:
    import pandas as pd

    out, _, dm, module = trained_run
    saved = pd.read_csv(out / "predictions.csv")
    test = dm.splits["test"]
    with torch.no_grad():
        pred = module.model(test["x"], test["media"], test["brand"], test["sku"])["log_gmv"].exp().numpy()
    np.testing.assert_allclose(saved.loc[saved["split"] == "test", "predicted"].to_numpy(), pred, rtol=1e-6)


def test_learned_adstock_stays_a_decay(trained_run) -> None:
    _, _, _, module = trained_run
    decay = module.model.adstock_decay()
    assert decay.shape == (module.model.n_media,)
    assert ((decay > 0) & (decay < 1)).all()
    assert isinstance(module.model.adstock_logit, torch.nn.Parameter)
    # it was learned: not exactly the configured starting value any more
    assert not torch.allclose(decay, torch.full_like(decay, 0.5), atol=1e-4)


def test_adstock_per_brand_uses_each_brands_decay() -> None:
    model = make_model(4, 2, seed=9, adstock_per_brand=True, perturb=0.0)
    with torch.no_grad():
        model.adstock_logit.copy_(torch.logit(torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [0.05, 0.5, 0.95]])))
    decay = model.adstock_decay()
    assert decay.shape == (4, 3) and ((decay > 0) & (decay < 1)).all()
    spend = torch.tensor([1.0, 1.0, 1.0, 1.0])  # rupees at lags 0..3, identical for every brand
    media = (spend * torch.tensor(MEDIA_SCALE)[:, None]).expand(4, 3, 4).clone()
    z = model.adstock(media, torch.arange(4))  # (4 brands, 3 channels), multiples of mean spend
    expected = (decay.unsqueeze(-1) ** torch.arange(4.0)).sum(-1)
    torch.testing.assert_close(z, expected)
    # per channel (default): one (C,) vector shared by every brand
    shared = make_model(4, 2, seed=9, perturb=0.0)
    assert shared.adstock_decay().shape == (3,)
    torch.testing.assert_close(shared.adstock_decay(), torch.tensor([0.3, 0.5, 0.7]))


def test_extreme_adstock_logits_stay_inside_the_unit_interval(float64) -> None:
    model = make_model(2, 1, seed=10, perturb=0.0)
    with torch.no_grad():
        model.adstock_logit.copy_(torch.tensor([[-30.0, 0.0, 30.0]]))
    decay = model.adstock_decay()
    assert ((decay > 0) & (decay < 1)).all()


def test_fixed_adstock_is_not_a_parameter() -> None:
    model = make_model(2, 1, seed=11, perturb=0.0, learn_adstock=False)
    assert "adstock_logit" not in dict(model.named_parameters())
    torch.testing.assert_close(model.adstock_decay(), torch.tensor([0.3, 0.5, 0.7]))


def test_media_penalty_is_the_media_columns_mean_square_and_enters_the_total(float64) -> None:
    from nam_mmm.training.loss import CompositeLoss

    model = make_model(2, 2)
    rows = make_rows(model, 12)
    with torch.no_grad():
        out = fwd(model, rows)
    weight = torch.ones(12, dtype=torch.float64)
    weight[:4] = 0.0  # rows outside the fit do not count
    batch = {**rows, "log_gmv": torch.zeros(12, dtype=torch.float64), "weight": weight}
    with torch.no_grad():  # the curve-grid terms
        base = CompositeLoss({"lambda_media": 0.0})(model, out, batch, epoch=100, rates=False)
        shrunk = CompositeLoss({"lambda_media": 2.5})(model, out, batch, epoch=100, rates=False)
    media = out["contrib"][4:, model.n_scalar :]
    assert media.abs().sum() > 0 and model.n_media == len(CHANNELS)
    assert float(shrunk["media_function"]) == pytest.approx(float((media**2).sum() / 8))
    assert float(shrunk["media_function"]) < float(shrunk["function"])  # the scalar features are not in it
    assert float(shrunk["total"] - base["total"]) == pytest.approx(2.5 * float(shrunk["media_function"]))
    with pytest.raises(Exception, match="lambda_media"):
        CompositeLoss({"lambda_media": -1.0})
