"""Contract tests over every registered shape component (a new ``@register`` class is tested automatically).

Each guarantee a component declares is checked on a dense grid reaching far outside the training range, in
two situations: with all parameters perturbed at random (not just the default init) and after fitting the
component to a target that goes against the guarantee (the optimizer then pushes as hard as it can).
"""

from __future__ import annotations

import json

import pytest
import torch

from nam_mmm.errors import ConfigError
from nam_mmm.models.shapes import REGISTRY, ShapeFunction, build_shape

N_UNITS, N_FEATURES = 3, 2
GRID_POINTS = 10_000
ALL_GUARANTEES = {"increasing", "decreasing", "concave", "nonnegative", "unimodal"}

# (name, hyper-parameters): every registered component at its defaults, plus the variants whose guarantee differs
VARIANTS = [(name, {}) for name in sorted(REGISTRY)] + [("hill", {"n_max": 3.0, "allow_s_shape": True})]
VARIANT_IDS = [name + ("" if not kw else "-" + "-".join(f"{k}={v}" for k, v in kw.items())) for name, kw in VARIANTS]


def make(name: str, kw: dict, perturb_seed: int | None = None, dtype: torch.dtype = torch.float64) -> ShapeFunction:
    comp = build_shape(name, N_UNITS, N_FEATURES, **kw).to(dtype)
    if perturb_seed is not None:
        gen = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for p in comp.parameters():
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 2.0)
    return comp


def dense_grid(comp: ShapeFunction, lo: float | None = None, hi: float | None = None) -> torch.Tensor:
    """(G, F) grid far beyond the training range: [0, 200] for spend-like inputs, [-50, 50] otherwise."""
    if lo is None:
        lo, hi = (0.0, 200.0) if comp.nonnegative_input else (-50.0, 50.0)
    x = torch.linspace(lo, hi, GRID_POINTS, dtype=torch.float64)
    return x.unsqueeze(1).expand(GRID_POINTS, comp.n_features).contiguous()


def training_range(comp: ShapeFunction, n: int = 200) -> torch.Tensor:
    lo, hi = (0.0, 8.0) if comp.nonnegative_input else (-3.0, 3.0)
    return torch.linspace(lo, hi, n, dtype=torch.float64).unsqueeze(1).expand(n, comp.n_features)


def adversarial_target(comp: ShapeFunction, x: torch.Tensor) -> torch.Tensor:
    """A target going against every guarantee the component declares, different per unit and feature (U, G, F)."""
    g = comp.guarantee
    t = 0.25 * x**2 + torch.sin(3.0 * x)  # convex with wiggles: against 'concave' and 'unimodal'
    if "increasing" in g:
        t = t - 2.0 * x
    if "decreasing" in g:
        t = t + 2.0 * x
    if "nonnegative" in g:
        t = t - 3.0
    amp = torch.arange(1, comp.n_units + 1, dtype=x.dtype).reshape(-1, 1, 1)
    return t.unsqueeze(0) * amp


def fit_adversarially(comp: ShapeFunction, steps: int = 200) -> tuple[float, float]:
    """Adam on the grid output towards :func:`adversarial_target`; returns (first loss, last loss)."""
    x = training_range(comp)
    target = adversarial_target(comp, x)
    opt = torch.optim.Adam(comp.parameters(), lr=0.05)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = (comp.grid(x) - target).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def rel_tol(values: torch.Tensor, rel: float = 1e-9) -> torch.Tensor:
    """Tolerance per (unit, feature): ``rel`` × the largest magnitude of that function on the grid (U, 1, F)."""
    return rel * values.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)


def assert_guarantees(comp: ShapeFunction, where: str) -> None:
    """Every declared guarantee holds for every unit and feature on the dense grid."""
    g = comp.guarantee
    assert g <= ALL_GUARANTEES, f"{comp.name}: unknown guarantee(s) {set(g) - ALL_GUARANTEES}"
    grid = dense_grid(comp)
    with torch.no_grad():
        v = comp.grid(grid)  # (U, G, F)
    assert v.shape == (N_UNITS, GRID_POINTS, N_FEATURES)
    assert torch.isfinite(v).all(), f"{comp.name} ({where}): non-finite values on the grid"
    d1 = v[:, 1:] - v[:, :-1]
    d2 = d1[:, 1:] - d1[:, :-1]
    tol = rel_tol(v)
    if "increasing" in g:
        worst = float((d1 + tol).min())
        assert worst >= 0, f"{comp.name} ({where}): decreases somewhere by {-worst:.3g} beyond tolerance"
    if "decreasing" in g:
        worst = float((d1 - tol).max())
        assert worst <= 0, f"{comp.name} ({where}): increases somewhere by {worst:.3g} beyond tolerance"
    if "concave" in g:
        worst = float((d2 - tol).max())
        assert worst <= 0, f"{comp.name} ({where}): convex somewhere (second difference {worst:.3g} beyond tolerance)"
    if "nonnegative" in g:
        assert comp.nonnegative_input, f"{comp.name}: 'nonnegative' is only meaningful on x >= 0 inputs"
        worst = float(v.min())
        assert worst >= -1e-7, f"{comp.name} ({where}): negative value {worst:.3g} on x >= 0"
    if "unimodal" in g:
        peak = comp.peak().detach()  # (U, F)
        assert peak.shape == (N_UNITS, N_FEATURES) and (peak > 0).all()
        before = grid[1:].unsqueeze(0) <= peak.unsqueeze(1)  # step i -> i+1 ends at or before the peak
        after = grid[:-1].unsqueeze(0) >= peak.unsqueeze(1)  # step starts at or after the peak
        rising_wrong = (-(d1 + tol)).clamp_min(0) * before
        falling_wrong = (d1 - tol).clamp_min(0) * after
        assert float(rising_wrong.max()) == 0, f"{comp.name} ({where}): falls before its peak"
        assert float(falling_wrong.max()) == 0, f"{comp.name} ({where}): rises after its peak"


# ---------------------------------------------------------------------------------------------- guarantees
def test_registry_holds_the_documented_families() -> None:
    expected = {"monotone_increasing", "monotone_decreasing", "concave_increasing", "hill", "beta_gamma", "exponential", "mlp", "linear"}
    assert expected <= set(REGISTRY)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_guarantees_hold_at_random_parameters(name: str, kw: dict) -> None:
    for seed in range(3):
        assert_guarantees(make(name, kw, perturb_seed=seed), f"random parameters, seed {seed}")


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_guarantees_survive_adversarial_training(name: str, kw: dict) -> None:
    comp = make(name, kw, perturb_seed=11)
    before = {k: v.detach().clone() for k, v in comp.state_dict().items()}
    first, last = fit_adversarially(comp)
    # the fit really moved the component (otherwise this would test the init again) ...
    moved = max(float((comp.state_dict()[k] - v).abs().max()) for k, v in before.items())
    assert moved > 1e-2 and last < first, f"{name}: training did not move the component (loss {first:.3g} -> {last:.3g})"
    # ... and the shape it promises still holds, far outside the range it was fitted on
    assert_guarantees(comp, "after adversarial training")


def test_hill_guarantee_depends_on_n_max() -> None:
    assert build_shape("hill", 1, 1).guarantee == frozenset({"increasing", "nonnegative", "concave"})
    s_shaped = build_shape("hill", 1, 1, n_max=3.0, allow_s_shape=True)
    assert s_shaped.guarantee == frozenset({"increasing", "nonnegative"})


def test_s_shaped_hill_really_is_convex_somewhere() -> None:
    """Why concavity is dropped for n_max > 1: with n near 3 the curve bends upward at low spend."""
    comp = make("hill", {"n_max": 3.0, "allow_s_shape": True})
    with torch.no_grad():
        comp.n.fill_(10.0)  # n = n_min + (n_max - n_min)·sigmoid(10) ≈ 3
        v = comp.grid(dense_grid(comp, 0.0, 5.0))
    d2 = v[:, 2:] - 2 * v[:, 1:-1] + v[:, :-2]
    assert float(d2.max()) > 0


def test_beta_gamma_peak_is_where_the_curve_turns() -> None:
    comp = make("beta_gamma", {}, perturb_seed=0)
    grid = dense_grid(comp, 0.0, 400.0)
    with torch.no_grad():
        v = comp.grid(grid)
    argmax = grid[v.argmax(dim=1), 0]  # (U, F): grid x of the largest value
    step = float(grid[1, 0] - grid[0, 0])
    peak = comp.peak().detach()
    inside = peak < 400.0
    assert inside.any()
    assert torch.allclose(argmax[inside], peak[inside], atol=2 * step)


# ---------------------------------------------------------------------------------------------- numerics
@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_values_and_gradients_are_finite_including_zero(name: str, kw: dict) -> None:
    comp = make(name, kw, perturb_seed=1, dtype=torch.float32)  # float32: what training runs in
    lo, hi = (0.0, 200.0) if comp.nonnegative_input else (-50.0, 50.0)
    points = torch.tensor([lo, 0.0, 1e-8, 1e-3, 0.5, 1.0, 3.0, hi])
    x = points.repeat_interleave(N_UNITS).unsqueeze(1).expand(-1, N_FEATURES).clone().requires_grad_(True)
    unit = torch.arange(N_UNITS).repeat(len(points))
    out = comp(x, unit)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all(), f"{name}: non-finite d f / d x at {points.tolist()}"
    for pname, p in comp.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: non-finite gradient of {pname}"
    # the loss of the first step at exactly zero spend must also have finite gradients on its own
    comp.zero_grad()
    zero = torch.zeros(N_UNITS, N_FEATURES, requires_grad=True)
    comp(zero, torch.arange(N_UNITS)).pow(2).sum().backward()
    assert torch.isfinite(zero.grad).all()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in comp.parameters())


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_anchored_at_zero(name: str, kw: dict) -> None:
    """f(anchor) = 0 for every unit and feature: biases carry the level, contributions read 'versus the anchor'."""
    comp = make(name, kw, perturb_seed=2)
    a = comp.anchor()
    assert a == 0.0
    with torch.no_grad():
        on_grid = comp.grid(torch.full((1, N_FEATURES), a, dtype=torch.float64))
        on_rows = comp(torch.full((N_UNITS, N_FEATURES), a, dtype=torch.float64), torch.arange(N_UNITS))
        away = comp.grid(torch.full((1, N_FEATURES), 2.0, dtype=torch.float64))
    assert torch.equal(on_grid, torch.zeros_like(on_grid))
    assert torch.equal(on_rows, torch.zeros_like(on_rows))
    if name != "linear" or kw:  # (linear's slope is 0 at init, but was perturbed here)
        assert float(away.abs().max()) > 0  # anchoring did not just zero everything


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_forward_rows_equal_grid_of_their_unit(name: str, kw: dict) -> None:
    """The two code paths (per-row units in training, all units on a grid for curves/penalties) agree."""
    comp = make(name, kw, perturb_seed=3)
    lo, hi = (0.0, 12.0) if comp.nonnegative_input else (-4.0, 4.0)
    g = torch.linspace(lo, hi, 57, dtype=torch.float64).unsqueeze(1) * torch.tensor([[1.0, 0.7]], dtype=torch.float64)
    with torch.no_grad():
        curves = comp.grid(g)  # (U, G, F)
        for u in range(N_UNITS):
            rows = comp(g, torch.full((len(g),), u, dtype=torch.long))
            torch.testing.assert_close(rows, curves[u], rtol=1e-12, atol=1e-12)
        # mixed units in one batch: row i uses unit i mod U
        unit = torch.arange(len(g)) % N_UNITS
        mixed = comp(g, unit)
        torch.testing.assert_close(mixed, curves[unit, torch.arange(len(g))], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_units_and_features_are_independent_functions(name: str, kw: dict) -> None:
    """Perturbing unit 1 / feature 0 parameters changes only that function (no mixing across the stack)."""
    comp = make(name, kw, perturb_seed=4)
    g = dense_grid(comp, 0.0, 5.0)[::100]
    with torch.no_grad():
        before = comp.grid(g)
        for p in comp.parameters():
            p[1, 0] += 0.37
        after = comp.grid(g)
    changed = (after - before).abs().amax(dim=1) > 0  # (U, F)
    expected = torch.zeros_like(changed)
    expected[1, 0] = True
    assert torch.equal(changed, expected)


@pytest.mark.parametrize(("name", "kw"), VARIANTS, ids=VARIANT_IDS)
def test_to_dict_from_dict_round_trip(name: str, kw: dict) -> None:
    comp = make(name, kw, perturb_seed=5, dtype=torch.float32)
    d = json.loads(json.dumps(comp.to_dict()))  # JSON-able, as saved with a model
    clone = ShapeFunction.from_dict(d)
    assert type(clone) is type(comp) and clone.hparams == comp.hparams and clone.guarantee == comp.guarantee
    x = dense_grid(comp).float()[::50]
    unit = torch.arange(len(x)) % N_UNITS
    with torch.no_grad():
        assert torch.equal(clone.grid(x), comp.grid(x))
        assert torch.equal(clone(x, unit), comp(x, unit))


# ---------------------------------------------------------------------------------------------- construction errors
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_unknown_hyperparameter_raises(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown hyper-parameter.*bogus_knob"):
        build_shape(name, N_UNITS, N_FEATURES, bogus_knob=1)


BOOLEAN_FLAGS = {"allow_s_shape"}  # declared with range (0, 1): false/true


def _out_of_range_cases():
    for name in sorted(REGISTRY):
        for key, (lo, hi) in REGISTRY[name].hparam_ranges.items():
            yield pytest.param(name, key, hi + max(1.0, abs(hi)), id=f"{name}-{key}-above")
            yield pytest.param(name, key, lo - max(1.0, abs(lo)), id=f"{name}-{key}-below")


@pytest.mark.parametrize(("name", "key", "value"), list(_out_of_range_cases()))
def test_out_of_range_hyperparameter_raises(name: str, key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key) as err:
        build_shape(name, N_UNITS, N_FEATURES, **{key: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declared_ranges_accept_their_bounds(name: str) -> None:
    """The edges of each declared range build (a range that rejects its own defaults would be a typo)."""
    for key, (lo, hi) in REGISTRY[name].hparam_ranges.items():
        if key in BOOLEAN_FLAGS or key.endswith("_min") or key.endswith("_max"):
            continue  # paired bounds (n_min < n_max ...) are checked against each other
        for value in (lo, hi):
            build_shape(name, 1, 1, **{key: int(value) if key == "hidden" else value})


def test_unknown_component_lists_registered_names() -> None:
    with pytest.raises(ConfigError) as err:
        build_shape("hil", N_UNITS, N_FEATURES)
    text = str(err.value)
    assert "'hil'" in text
    for name in REGISTRY:
        assert name in text


def test_hill_s_shape_needs_explicit_permission() -> None:
    with pytest.raises(ConfigError, match="allow_s_shape"):
        build_shape("hill", N_UNITS, N_FEATURES, n_max=2.0)
    build_shape("hill", N_UNITS, N_FEATURES, n_max=2.0, allow_s_shape=True)


@pytest.mark.parametrize(("name", "kw"), [("hill", {"n_min": 0.8, "n_max": 0.5}), ("beta_gamma", {"alpha_min": 0.9, "alpha_max": 0.5})])
def test_inverted_bounds_raise(name: str, kw: dict) -> None:
    with pytest.raises(ConfigError, match="below"):
        build_shape(name, N_UNITS, N_FEATURES, **kw)


@pytest.mark.parametrize("sizes", [(0, 2), (3, 0)])
def test_empty_stacks_raise(sizes: tuple[int, int]) -> None:
    with pytest.raises(ConfigError):
        build_shape("linear", *sizes)
