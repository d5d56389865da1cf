"""The recovery suite: generator scenarios that break the generator's own assumptions, and their fold plans.

Each entry of :data:`SCENARIOS` is a set of :class:`~nam_mmm.data.sources.synthetic.SyntheticConfig` overrides that
combines several ways real panels differ from the model's assumptions: festival-driven seasonality on real dates
(the model sees one sin/cos pair of the month), Hill / log / exponential saturation, geometric and delayed
(peaked) adstock, flighted channels with zero periods, a nearly flat channel, correlated spend, national / brand /
SKU-level spend, media at 5–15 % of GMV, weekly and monthly periods and several noise levels.

``python train.py data=recovery data.source.scenario=<name> data.source.seed=<n>`` trains on one of them
(:func:`load_scenario` is the data source of ``conf/data/recovery.yaml``); ``scripts/bench_recovery.py`` runs
the HR-NAM and the ridge baselines over all of them and over the independent panels in ``../shared/recovery/``.
"""

from __future__ import annotations

from pathlib import Path

from nam_mmm.data.panel import Panel
from nam_mmm.data.sources.synthetic import SyntheticConfig, generate, load_synthetic
from nam_mmm.errors import ConfigError


def _ch(name: str, mean_spend: float, decay: float, beta: float, k: float = 1.0, n: float = 0.8, on: float = 0.8, **extra) -> dict:
    return {"name": name, "mean_spend": mean_spend, "decay": decay, "beta": beta, "half_saturation": k, "hill_n": n, "on_air_share": on, **extra}


# the case: eight national channels, one of them nearly flat
_NATIONAL_EIGHT = [
    _ch("tv", 2.0e7, 0.6, 0.060, 1.2, 0.9, 0.65),
    _ch("digital", 8.0e6, 0.3, 0.045, 0.8, 0.8, 0.9),
    _ch("sponsorship", 1.5e7, 0.5, 0.015, 1.0, 0.8, 0.5),
    _ch("search", 3.0e6, 0.1, 0.030, 0.7, 0.7, 0.95),
    _ch("social", 5.0e6, 0.2, 0.012, 0.9, 0.8, 0.8),
    _ch("radio", 4.0e6, 0.4, 0.010, 1.0, 0.8, 0.6),
    _ch("affiliates", 2.5e6, 0.2, 0.025, 0.8, 0.8, 0.85),
    _ch("print", 6.0e6, 0.3, 0.008, 1.0, 0.8, 1.0, pattern="flat"),
]

# retail media bought per SKU: video with a delayed (peaked) carry-over, exponential saturation
_RETAIL_MEDIA = [
    _ch("sponsored_products", 4.0e6, 0.2, 0.050, 0.8, on=0.9),
    _ch("display", 6.0e6, 0.4, 0.030, 1.0, on=0.7, adstock="delayed", peak_lag=1.0),
    _ch("video", 1.2e7, 0.7, 0.040, 1.5, on=0.5, adstock="delayed", peak_lag=2.0),
    _ch("social", 3.0e6, 0.2, 0.015, 0.8, on=0.8),
    _ch("coupons", 2.0e6, 0.1, 0.020, 0.6, pattern="always_on"),
]

# brand campaigns in bursts: long zero stretches, one S-shaped Hill curve, delayed carry-over for TV
_BRAND_BURSTS = [
    _ch("tv", 2.5e7, 0.6, 0.070, 1.0, 1.6, 0.35, adstock="delayed", peak_lag=2.0),
    _ch("digital", 8.0e6, 0.3, 0.040, 0.8, 0.8, 0.6),
    _ch("outdoor", 1.0e7, 0.5, 0.012, 1.0, 0.8, 0.4),
    _ch("search", 3.0e6, 0.1, 0.030, 0.7, 0.7, 0.9, pattern="always_on"),
    _ch("influencer", 4.0e6, 0.3, 0.020, 1.0, 0.9, 0.45),
]

# mixed response forms per channel, one flat channel, weak media in loud noise
_MIXED_WEAK = [
    _ch("tv", 2.0e7, 0.6, 0.050, 1.2, 0.9, 0.6, saturation="hill"),
    _ch("digital", 8.0e6, 0.3, 0.040, 0.8, on=0.85, saturation="exponential"),
    _ch("search", 3.0e6, 0.1, 0.030, on=0.95, saturation="log"),
    _ch("radio", 5.0e6, 0.5, 0.012, 1.0, on=0.6, adstock="delayed", peak_lag=1.5),
    _ch("print", 6.0e6, 0.3, 0.008, pattern="flat"),
    _ch("social", 5.0e6, 0.2, 0.015, 0.9, on=0.8, saturation="exponential"),
]

# six national channels for the monthly panels
_MONTHLY_SIX = [
    _ch("tv", 3.5e7, 0.5, 0.060, 1.2, 0.9, 0.7),
    _ch("digital", 1.5e7, 0.2, 0.045, 0.8, 0.8, 0.95),
    _ch("sponsorship", 2.5e7, 0.4, 0.015, 1.0, 0.8, 0.5),
    _ch("search", 5.0e6, 0.1, 0.030, 0.7, 0.7, 1.0, pattern="always_on"),
    _ch("social", 8.0e6, 0.2, 0.012, 0.9, 0.8, 0.8),
    _ch("radio", 6.0e6, 0.3, 0.010, 1.0, 0.8, 0.6),
]

# strong, well-separated media: independent always-on SKU-level spend, ROIs an order of magnitude apart
_SEPARATED = [
    _ch("search", 2.0e6, 0.1, 0.080, 1.0, 0.8, pattern="always_on"),
    _ch("social", 4.0e6, 0.2, 0.040, 1.0, 0.8, pattern="always_on"),
    _ch("display", 8.0e6, 0.3, 0.020, 1.0, 0.8, pattern="always_on"),
    _ch("tv", 1.6e7, 0.4, 0.010, 1.0, 0.8, pattern="always_on"),
]

SCENARIOS: dict[str, dict] = {
    "festival_national": dict(  # weekly, 4 × 5 SKUs, 8 national channels, festival seasonality, media 10 % of GMV
        n_brands=4, skus_per_brand=5, n_periods=104, freq="W-MON", start="2023-01-02", channels=_NATIONAL_EIGHT,
        seasonality="festival", festival_spend_lift=0.6, festival_discount=0.08, spend_correlation=0.5,
        media_share=0.10, noise_sd=0.05,
    ),
    "retail_media_sku": dict(  # SKU-level spend, exponential saturation, delayed adstock, smooth + festival seasons
        n_brands=3, skus_per_brand=4, n_periods=104, freq="W-MON", start="2023-01-02", channels=_RETAIL_MEDIA,
        saturation="exponential", spend_level="sku", seasonality="both", spend_correlation=0.2,
        media_share=0.15, noise_sd=0.04,
    ),
    "brand_bursts_delayed": dict(  # brand-level bursts, S-shaped Hill, delayed TV, strong festivals, low noise
        n_brands=4, skus_per_brand=3, n_periods=130, freq="W-MON", start="2023-01-02", channels=_BRAND_BURSTS,
        spend_level="brand", seasonality="festival", festival_lift=1.3, festival_spend_lift=0.4,
        media_share=0.12, noise_sd=0.03,
    ),
    "weak_noisy_mixed": dict(  # media 5 % of GMV, noise sd 0.12, mixed curves, a flat channel, correlated spend
        n_brands=3, skus_per_brand=4, n_periods=104, freq="W-MON", start="2023-01-02", channels=_MIXED_WEAK,
        seasonality="both", spend_correlation=0.6, festival_discount=0.05, media_share=0.05, noise_sd=0.12,
    ),
    "monthly_correlated_log": dict(  # monthly, 4 years, log saturation, highly correlated national spend
        n_brands=4, skus_per_brand=3, n_periods=48, freq="MS", start="2022-01-01", channels=_MONTHLY_SIX,
        saturation="log", seasonality="both", spend_correlation=0.85, media_share=0.08, noise_sd=0.06,
    ),
    "monthly_festival_sku": dict(  # monthly, 5 years, SKU-level spend, festival seasonality, exponential curves
        n_brands=3, skus_per_brand=3, n_periods=60, freq="MS", start="2022-01-01", channels=_MONTHLY_SIX,
        saturation="exponential", spend_level="sku", seasonality="festival", festival_spend_lift=0.5,
        festival_discount=0.06, media_share=0.12, noise_sd=0.05,
    ),
    "strong_separated": dict(  # the regime where recovery must work: independent SKU-level spend, strong media
        n_brands=3, skus_per_brand=3, n_periods=104, freq="W-MON", start="2023-01-02", channels=_SEPARATED,
        spend_level="sku", spend_correlation=0.0, seasonality="smooth", adstock="geometric",
        media_share=0.15, noise_sd=0.03,
    ),
}

DESCRIPTIONS: dict[str, str] = {
    "festival_national": "weekly 104 × 20 SKUs; 8 national channels (1 flat); festival seasonality with media and discounts planned around it; spend correlation 0.5; media 10 %; noise 0.05",
    "retail_media_sku": "weekly 104 × 12 SKUs; 5 SKU-level channels; exponential saturation; delayed adstock (θ = 1, 2) for 2; smooth + festival seasonality; media 15 %; noise 0.04",
    "brand_bursts_delayed": "weekly 130 × 12 SKUs; 5 brand-level channels in bursts (on air 35–60 %); S-shaped Hill and delayed TV (θ = 2); strong festivals; media 12 %; noise 0.03",
    "weak_noisy_mixed": "weekly 104 × 12 SKUs; 6 national channels with Hill / exponential / log curves, 1 delayed, 1 flat; spend correlation 0.6; media 5 %; noise 0.12",
    "monthly_correlated_log": "monthly 48 × 12 SKUs; 6 national channels; log saturation; spend correlation 0.85; smooth + festival seasonality; media 8 %; noise 0.06",
    "monthly_festival_sku": "monthly 60 × 9 SKUs; 6 SKU-level channels; exponential saturation; festival seasonality diluted by the month; media 12 %; noise 0.05",
    "strong_separated": "weekly 104 × 9 SKUs; 4 always-on SKU-level channels, independent spend, ROIs far apart; smooth seasonality; media 15 %; noise 0.03",
}


def scenario_config(scenario: str, seed: int = 1, **overrides) -> SyntheticConfig:
    """The generator config of a named scenario for a seed; keyword arguments override single fields."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown recovery scenario '{scenario}' (known: {', '.join(SCENARIOS)})")
    kwargs = {**SCENARIOS[scenario], **overrides, "seed": int(seed)}
    kwargs["channels"] = [dict(c) for c in kwargs["channels"]]
    return SyntheticConfig(**kwargs)


def generate_scenario(scenario: str, seed: int = 1, **overrides):
    """Draw the :class:`~nam_mmm.data.sources.synthetic.SyntheticPanel` of a scenario (frame, truth, noiseless truth rows)."""
    return generate(scenario_config(scenario, seed, **overrides))


def load_scenario(scenario: str, seed: int = 1, **overrides) -> Panel:
    """The data source of ``conf/data/recovery.yaml``: a scenario's panel in memory, truth attached."""
    cfg = scenario_config(scenario, seed, **overrides)
    kwargs = {k: getattr(cfg, k) for k in SyntheticConfig.__dataclass_fields__}
    return load_synthetic(**kwargs, label=f"scenario {scenario} (seed={cfg.seed})")


def fold_plan(n_periods: int, freq: str, n_folds: int = 4) -> dict[str, int]:
    """Walk-forward plan of a recovery panel: the last ``n_folds`` blocks of the calendar are tested in turn.

    Weekly: 13-week test blocks; monthly: 6-month blocks. No early-stopping slice (``val_size`` 0): an 8-week slice
    at the end of the first window held the festive season the model had not yet seen, so early stopping halted
    fold 0 after ~150 epochs with its price curve near its initial value (own-price MAE 0.99 on festival_national
    seed 1; 0.14 trained to ``max_epochs`` on every period). The first training window is everything before the
    blocks, which must be at least half the calendar.
    """
    weekly = freq.upper().startswith("W")
    test = 13 if weekly else 6
    val = 0
    initial = n_periods - n_folds * test
    if initial < max(n_periods // 2, 8):
        raise ConfigError(f"{n_periods} periods are too few for {n_folds} walk-forward folds of {test}")
    return {"initial_train": initial, "test_size": test, "step": test, "val_size": val}


SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "recovery"


def shared_panels(root: str | Path | None = None) -> list[Path]:
    """Folders of ``../shared/recovery/`` that hold both ``panel.csv`` and ``truth.json`` (empty when absent)."""
    base = Path(root) if root is not None else SHARED_DIR
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / "panel.csv").is_file() and (p / "truth.json").is_file())


def shared_truth(truth: dict) -> dict:
    """A shared panel's ``truth.json`` in the keys the scorers read (ROI and contributions in sales units)."""
    return {"roi": dict(truth["roi"]), "contribution_inr": dict(truth["contribution"])}


MODELS = ["hr_nam", "ridge", "loglog_ridge"]  # the models the suite scores


def worst_fold_vs_naive(predictions, naive) -> float:
    """Largest ratio over folds of a model's fold MAPE to the naive training mean's MAPE on that fold."""
    from nam_mmm.evaluation.metrics import mape

    ratios = []
    for fold, g in predictions.groupby("fold"):
        n = naive[naive["fold"] == fold]
        g, n = g[g["fit_weight"] > 0], n[n["fit_weight"] > 0]
        ratios.append(mape(g["actual"], g["predicted"]) / mape(n["actual"], n["predicted"]))
    return float(max(ratios))


def score_run(run_dir: str | Path, truth: dict, truth_rows=None) -> tuple[dict[str, dict[str, float]], dict]:
    """Recovery metrics per model (:data:`MODELS`) for a finished HR-NAM run folder and the baselines on its folds.

    Reads the run's ``config.yaml`` (to rebuild the same feature table and folds), ``roi.csv``,
    ``contributions.csv``, ``elasticities.csv`` and ``oos_predictions.csv``; fits ``naive_mean``, ``ridge`` and
    ``loglog_ridge`` per fold on the same rows (attribution of the ridges from their coefficients). ``truth`` holds
    ``roi`` and ``contribution_inr`` per channel (and, for generator panels, the elasticities); ``truth_rows`` the
    noiseless mean per row (None: no noise floor). Returns ``({model: metrics}, info)``.
    """
    import pandas as pd
    from omegaconf import OmegaConf

    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.evaluation.baseline_attribution import baseline_attribution
    from nam_mmm.evaluation.baselines import run_baselines
    from nam_mmm.evaluation.metrics import mape
    from nam_mmm.evaluation.recovery import attribution_recovery, elasticity_recovery, noise_floor_gap

    run_dir = Path(run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    hr_roi = pd.read_csv(run_dir / "roi.csv")
    hr_contrib = pd.read_csv(run_dir / "contributions.csv")
    hr_el = pd.read_csv(run_dir / "elasticities.csv")
    hr = pd.read_csv(run_dir / "oos_predictions.csv", parse_dates=["date"]).rename(columns={"date": "period"})
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    base, _, _ = run_baselines(table, folds, ["naive_mean", "ridge", "loglog_ridge"])
    hr["period"] = hr["period"].astype(base["period"].dtype)  # the CSV reads back at another datetime resolution
    keys = ["fold", "period", "sku"]
    hr_rows = hr[keys].sort_values(keys).reset_index(drop=True)
    for name, g in base.groupby("model"):  # the same rows, or the comparison means nothing
        if not g[keys].sort_values(keys).reset_index(drop=True).equals(hr_rows):
            raise RuntimeError(f"baseline {name} scored other rows than the HR-NAM run in {run_dir}")
    attribution = baseline_attribution(table, folds, ["ridge", "loglog_ridge"])
    hr_att = hr_roi[["channel", "roi"]].merge(hr_contrib[["channel", "contribution_inr"]], on="channel")
    estimates = {
        "hr_nam": (hr_att, hr_el, hr),
        **{m: (attribution[m]["roi"], attribution[m]["elasticities"], base[base["model"] == m]) for m in ("ridge", "loglog_ridge")},
    }
    naive = base[base["model"] == "naive_mean"]
    out = {}
    for model, (att, el, preds) in estimates.items():
        m = attribution_recovery(truth["roi"], truth["contribution_inr"], att)
        m.update(elasticity_recovery(truth, el))
        fit = preds[preds["fit_weight"] > 0]
        m["mape"] = mape(fit["actual"], fit["predicted"])
        if truth_rows is not None:
            m.update(noise_floor_gap(truth_rows, preds))
        m["worst_fold_vs_naive"] = worst_fold_vs_naive(preds, naive)
        out[model] = m
    fit = naive[naive["fit_weight"] > 0]
    info = {
        "folds": len(folds),
        "test_starts": [str(f.test[0].date()) for f in folds],
        "epochs": int(cfg.trainer.max_epochs),
        "naive_mape": mape(fit["actual"], fit["predicted"]),
    }
    return out, info
