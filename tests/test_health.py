"""Named health checks: each check passes on plausible numbers and fires, with its reason, on implausible ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import DTMART_DIR, requires_dtmart
from nam_mmm.evaluation.health import (
    HealthConfig,
    baseline_check,
    diminishing_returns_check,
    health_checks,
    identifiability_checks,
    interval_width_checks,
    load_benchmarks,
    marketing_share_check,
    own_price_check,
    roi_checks,
    stability_checks,
)

CFG = HealthConfig()


def _el(price: float, interval: str = "block_bootstrap_90", lower: float | None = None, upper: float | None = None) -> pd.DataFrame:
    lo = price - 0.1 if lower is None else lower
    hi = price + 0.1 if upper is None else upper
    return pd.DataFrame(
        [
            {"level": "all", "unit": "all", "feature": "price", "elasticity": price, "lower": lo, "upper": hi, "interval": interval},
            {"level": "brand", "unit": "b1", "feature": "price", "elasticity": price, "lower": lo, "upper": hi, "interval": interval},
        ]
    )


def _roi(roi=(2.0, 0.5), mroi=(0.8, 0.2), share=(0.05, 0.03), lower=None, upper=None, interval="block_bootstrap_90") -> pd.DataFrame:
    roi, mroi = np.asarray(roi, float), np.asarray(mroi, float)
    return pd.DataFrame(
        {
            "channel": ["tv", "search"],
            "spend_inr": [1e7, 1e7],
            "roi": roi,
            "marginal_roi": mroi,
            "share_of_gmv": share,
            "roi_lower": roi * 0.8 if lower is None else lower,
            "roi_upper": roi * 1.2 if upper is None else upper,
            "interval": interval,
        }
    )


def test_own_price_within_and_outside_bounds():
    assert {r["verdict"] for r in own_price_check(_el(-1.5), CFG)} == {"pass"}
    wrong_sign = own_price_check(_el(0.3), CFG)
    assert {r["verdict"] for r in wrong_sign} == {"fail"} and "weaker" in wrong_sign[0]["reason"]
    assert own_price_check(_el(-6.0), CFG)[0]["verdict"] == "fail"
    assert own_price_check(pd.DataFrame(columns=["level", "unit", "feature", "elasticity"]), CFG)[0]["verdict"] == "skipped"


def test_marketing_share_range():
    assert marketing_share_check(_roi(share=(0.05, 0.03)), CFG)[0]["verdict"] == "pass"
    high = marketing_share_check(_roi(share=(0.4, 0.3)), CFG)[0]
    assert high["verdict"] == "warn" and high["value"] == pytest.approx(0.7) and "ceiling" in high["reason"]


def test_diminishing_returns_from_mroi_and_curve():
    ok = diminishing_returns_check(_roi(), None, None, CFG)
    assert [r["verdict"] for r in ok] == ["pass", "pass"]
    rising = diminishing_returns_check(_roi(mroi=(3.0, 0.2)), None, None, CFG)
    assert rising[0]["verdict"] == "warn" and "no diminishing returns" in rising[0]["reason"]
    x = np.linspace(0, 10, 21)
    convex = pd.DataFrame({"feature": "media_search", "brand": "b1", "x": x, "effect_log_gmv": 0.001 * x**2})
    steep = diminishing_returns_check(_roi(), convex, None, CFG)
    assert steep[1]["verdict"] == "warn" and "steepens" in steep[1]["reason"]


def test_baseline_share_and_negative_periods():
    d = pd.DataFrame({"period": [1, 1, 2, 2], "base_inr": [80.0, 80.0, 70.0, 70.0], "predicted": [100.0] * 4})
    assert baseline_check(d, _roi(), CFG)[0]["verdict"] == "pass"
    low = d.assign(base_inr=[10.0, 10.0, 20.0, 20.0])
    assert baseline_check(low, _roi(), CFG)[0]["verdict"] == "warn"
    negative = d.assign(base_inr=[10.0, 10.0, -30.0, 0.0])
    assert baseline_check(negative, _roi(), CFG)[0]["verdict"] == "fail"


def test_roi_range_and_benchmarks(tmp_path):
    rows = roi_checks(_roi(roi=(2.0, 45.0)), CFG)
    assert [r["verdict"] for r in rows if r["check"] == "roi_range"] == ["pass", "warn"]
    skipped = [r for r in rows if r["check"] == "roi_benchmark"]
    assert skipped[0]["verdict"] == "skipped" and "no ROI benchmarks" in skipped[0]["reason"]

    (tmp_path / "bench.yaml").write_text("tv: 2.5\nsearch: [30, 60]\n")
    (tmp_path / "bench.csv").write_text("channel,roi_low,roi_high\ntv,5,8\n")
    yaml_rows = [r for r in roi_checks(_roi(roi=(2.0, 45.0)), HealthConfig(benchmarks=str(tmp_path / "bench.yaml"))) if r["check"] == "roi_benchmark"]
    assert [r["verdict"] for r in yaml_rows] == ["pass", "pass"]  # 2.0 within [2.5/2, 2.5·2]; 45 within [30, 60]
    csv_rows = [r for r in roi_checks(_roi(roi=(2.0, 45.0)), HealthConfig(benchmarks=str(tmp_path / "bench.csv"))) if r["check"] == "roi_benchmark"]
    assert [r["verdict"] for r in csv_rows] == ["warn", "skipped"]
    assert load_benchmarks(tmp_path / "bench.csv").loc[0, "roi_high"] == 8
    with pytest.raises(FileNotFoundError):
        roi_checks(_roi(), HealthConfig(benchmarks=str(tmp_path / "missing.yaml")))


def test_interval_width():
    narrow = interval_width_checks(_el(-1.5), _roi(), CFG)
    assert {r["verdict"] for r in narrow} == {"pass"}
    wide = interval_width_checks(_el(-1.5, lower=-4.0, upper=0.5), _roi(lower=[0.1, 0.1], upper=[9.0, 9.0]), CFG)
    assert {r["subject"]: r["verdict"] for r in wide} == {"roi:tv": "warn", "roi:search": "warn", "elasticity:price": "warn"}
    row_spread = interval_width_checks(_el(-1.5, interval="row_spread_10_90"), _roi(interval="none"), CFG)
    assert row_spread[0]["verdict"] == "skipped" and "not uncertainty" in row_spread[0]["reason"]


def test_identifiability_rows_name_the_channels():
    ident = {
        "ok": False,
        "n_periods": 11,
        "condition_number": 55.0,
        "distinct_levels": {"atl": 10, "online": 11, "sem": 3},
        "correlation": {"atl": {"atl": 1, "online": 0.93, "sem": 0.2}, "online": {"atl": 0.93, "online": 1, "sem": 0.1}, "sem": {"atl": 0.2, "online": 0.1, "sem": 1}},
        "flagged": {"atl": ["spend correlates with online (r = +0.93)"], "online": ["spend correlates with atl (r = +0.93)"], "sem": ["3 distinct spend levels (< 4)"]},
        "block_reasons": ["11 periods for 3 channels (3.7 per channel < 5)"],
    }
    rows = {r["subject"]: r for r in identifiability_checks(ident)}
    assert rows["condition_number"]["verdict"] == "fail" and rows["periods_per_channel"]["verdict"] == "fail"
    assert rows["atl"]["verdict"] == "fail" and "online" in rows["atl"]["reason"] and rows["atl"]["value"] == pytest.approx(0.93)
    assert rows["sem"]["verdict"] == "fail" and "3 distinct" in rows["sem"]["reason"]
    assert identifiability_checks(None)[0]["verdict"] == "skipped"


def test_stability():
    s = pd.DataFrame({"unit": "all", "feature": ["price", "nps"], "mean": [-1.5, 0.2], "sd": [0.1, 0.2], "cv": [0.0667, 1.0], "min": [-1.6, 0.0], "max": [-1.4, 0.4], "folds": 4})
    assert [r["verdict"] for r in stability_checks(s, CFG)] == ["pass", "warn"]
    assert stability_checks(None, CFG)[0]["verdict"] == "skipped"


def test_unknown_threshold_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        HealthConfig.from_dict({"max_relative_widht": 2})


def test_health_checks_read_the_run_folder(tmp_path):
    (tmp_path / "config.yaml").write_text("health:\n  roi_range: [0.0, 1.0]\n")
    _el(-1.5).to_csv(tmp_path / "elasticities.csv", index=False)
    _roi().to_csv(tmp_path / "roi.csv", index=False)
    (tmp_path / "identifiability.json").write_text(json.dumps({"ok": True, "n_periods": 50, "condition_number": 2.0, "distinct_levels": {"tv": 40, "search": 45}, "correlation": {}, "flagged": {}, "block_reasons": []}))
    h = health_checks(tmp_path)
    assert list(h.columns) == ["check", "subject", "value", "threshold", "verdict", "reason"]
    assert set(h["check"]) >= {"own_price_elasticity", "marketing_share", "diminishing_returns", "baseline", "roi_range", "roi_benchmark", "interval_width", "identifiability", "elasticity_stability"}
    tv = h[(h["check"] == "roi_range") & (h["subject"] == "tv")].iloc[0]
    assert tv["verdict"] == "warn" and tv["threshold"] == "in [0.0, 1.0]"  # the run's own health block is used
    assert h["reason"].str.len().min() > 0


@requires_dtmart
def test_dtmart_identifiability_check_fires():
    """On DT Mart's training spend (the last walk-forward fold's periods, as a run checks) the check fails and names channels."""
    from omegaconf import OmegaConf

    from helpers import compose_train
    from nam_mmm.entry import _identifiability, load_table, make_splitter

    cfg = compose_train(["data=dtmart", "validation=walk_forward", "logger=none"])
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    ident = _identifiability(table, folds, cfg).to_dict()
    rows = identifiability_checks(ident, OmegaConf.to_container(cfg.identifiability))
    failed = [r for r in rows if r["verdict"] == "fail"]
    assert failed and not ident["ok"]
    assert any(r["subject"] in table.channels for r in failed), rows
    assert DTMART_DIR.exists()
