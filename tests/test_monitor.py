"""The monitor (drift, online MAPE, alerts in JSON lines) and the A/B test (seeded split, Welch's t-test).

The unit tests feed the monitor synthetic reference and served rows, so each drift test and threshold is
checked on data whose answer is known; the API tests run two tiny models (seeds 0 and 1) as champion and
challenger through FastAPI's TestClient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import train_in_process
from nam_mmm.serving.ab_test import ABConfig, ABTest, split_value
from nam_mmm.serving.monitor import ALERTS, Monitor, MonitorConfig, online_mape_from_logs, psi

INPUTS = ["price", "promo_days"]


def reference(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"sku": np.tile(["a", "b"], n // 2), "price": rng.normal(100, 10, n), "promo_days": rng.integers(0, 4, n)})


def served(n: int, seed: int, price_shift: float = 0.0, promo: int | None = None, skus=("a", "b"), start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "period": [f"p{start + i:05d}" for i in range(n)],
            "sku": np.resize(list(skus), n),
            "price": rng.normal(100 + price_shift, 10, n),
            "promo_days": np.full(n, promo) if promo is not None else rng.integers(0, 4, n),
        }
    )


def monitor(tmp_path: Path | None = None, **cfg) -> Monitor:
    config = MonitorConfig(dir=str(tmp_path) if tmp_path else None, **{"window": 100, "min_rows": 50, "check_every": 50, **cfg})
    return Monitor(reference(), INPUTS, config, model_version="v1")


def alerts_file(tmp_path: Path) -> list[dict]:
    path = tmp_path / ALERTS
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_no_drift_is_found_when_served_inputs_follow_the_training_distribution(tmp_path) -> None:
    m = monitor(tmp_path)
    raised = m.record_predictions(served(100, 1), np.ones(100), "v1")
    assert raised == [] and alerts_file(tmp_path) == []
    tests = {r["feature"]: r for r in m.drift()}
    assert tests["price"]["test"] == "ks" and not tests["price"]["drift"]
    assert tests["promo_days"]["test"] == "psi" and tests["sku"]["test"] == "psi"  # integer levels and the SKU mix are discrete


def test_a_shifted_continuous_input_raises_one_ks_alert_and_resolves(tmp_path) -> None:
    m = monitor(tmp_path)
    raised = m.record_predictions(served(100, 1, price_shift=15.0), np.ones(100), "v1")
    assert [a["feature"] for a in raised] == ["price"] and raised[0]["test"] == "ks" and raised[0]["p_value"] < 0.01
    assert m.record_predictions(served(50, 2, price_shift=15.0, start=100), np.ones(50), "v1") == []  # still drifted: no new alert
    m.record_predictions(served(100, 3, start=200), np.ones(100), "v1")  # back to the training distribution
    lines = alerts_file(tmp_path)
    assert [(a["status"], a["feature"]) for a in lines] == [("raised", "price"), ("resolved", "price")]
    assert "input drift in price" in lines[0]["message"] and lines[0]["model"] == "v1"


def test_a_discrete_input_and_the_sku_mix_drift_by_psi(tmp_path) -> None:
    m = monitor(tmp_path, psi_max=0.2)
    raised = m.record_predictions(served(100, 1, promo=7, skus=("a",)), np.ones(100), "v1")  # an unseen promo level, one SKU only
    by = {a["feature"]: a for a in raised}
    assert set(by) == {"promo_days", "sku"} and by["promo_days"]["statistic"] > 0.2
    ref = np.array([0, 1, 2, 3] * 25)
    assert psi(ref, ref, [0, 1, 2, 3]) == pytest.approx(0.0)
    assert psi(ref, np.full(100, 3), [0, 1, 2, 3]) > 1.0


def test_online_mape_alert_needs_enough_actuals_and_crosses_the_threshold_once(tmp_path) -> None:
    m = monitor(tmp_path, min_actuals=10, mape_max=20.0)
    rows = served(30, 1)
    m.record_predictions(rows, np.full(30, 100.0), "v1")
    out = m.record_actuals(pd.DataFrame({"period": rows["period"][:5], "sku": rows["sku"][:5], "gmv": 150.0}))
    assert out["matched"] == 5 and out["online_mape"] is None and out["alerts"] == []  # 5 < min_actuals
    out = m.record_actuals(pd.DataFrame({"period": rows["period"][5:20], "sku": rows["sku"][5:20], "gmv": 125.0}))
    assert out["online_mape"] == pytest.approx((5 * 50 / 1.5 + 15 * 25 / 1.25) / 20)
    assert [a["kind"] for a in out["alerts"]] == ["mape"]
    out = m.record_actuals(pd.DataFrame({"period": ["nope"], "sku": ["a"], "gmv": 1.0}))
    assert out["unmatched"] == 1 and out["alerts"] == []  # still above: no second alert
    assert [a["kind"] for a in alerts_file(tmp_path)] == ["mape"]


def test_a_restarted_monitor_and_the_retrainer_read_the_same_state_from_the_logs(tmp_path) -> None:
    m = monitor(tmp_path, min_actuals=5)
    rows = served(20, 1)
    m.record_predictions(rows, np.full(20, 100.0), "v1")
    m.record_actuals(pd.DataFrame({"period": rows["period"][:10], "sku": rows["sku"][:10], "gmv": 80.0}))
    again = monitor(tmp_path, min_actuals=5)
    assert again.online_mape() == pytest.approx(25.0) == m.online_mape()
    assert again.n_predictions == 20 and len(again.window) == 20
    assert again.record_actuals(pd.DataFrame({"period": rows["period"][10:11], "sku": rows["sku"][10:11], "gmv": 100.0}))["matched"] == 1
    assert online_mape_from_logs(tmp_path, window=100, min_actuals=5) == (pytest.approx((10 * 25 + 0) / 11), 11)
    assert online_mape_from_logs(tmp_path, min_actuals=50)[0] is None


# ---------------------------------------------------------------------------------------------------- A/B
def test_the_split_is_seeded_stable_and_honours_the_share() -> None:
    keys = [f"req-{i}" for i in range(4000)]
    a = ABTest(ABConfig(share=0.3, seed=7), {"A": "m1", "B": "m2"})
    arms = [a.assign(k) for k in keys]
    assert arms == [ABTest(ABConfig(share=0.3, seed=7), {}).assign(k) for k in keys]  # same seed: same split
    assert arms != [ABTest(ABConfig(share=0.3, seed=8), {}).assign(k) for k in keys]
    assert abs(arms.count("B") / len(keys) - 0.3) < 0.03
    assert all((split_value(7, k) < 0.3) == (arm == "B") for k, arm in zip(keys, arms, strict=True))
    counter = ABTest(ABConfig(seed=1), {})
    assert [counter.assign() for _ in range(50)] == [ABTest(ABConfig(seed=1), {}).assign(f"#{i}") for i in range(50)]


def test_welch_t_test_reports_improvement_and_significance() -> None:
    from scipy import stats

    rng = np.random.default_rng(0)
    ab = ABTest(ABConfig(min_actuals=30, alpha=0.05), {"A": "old", "B": "new"})
    assert "waiting for actuals" in ab.report()["verdict"]
    a_err, b_err = np.abs(rng.normal(20, 5, 200)), np.abs(rng.normal(15, 5, 150))
    for e in a_err:
        ab.record("A", e)
    for e in b_err:
        ab.record("B", e)
    rep = ab.report()
    expected = stats.ttest_ind(a_err, b_err, equal_var=False)
    assert rep["p_value"] == pytest.approx(expected.pvalue) and rep["t"] == pytest.approx(expected.statistic)
    assert rep["significant"] and rep["improvement_pct"] == pytest.approx((a_err.mean() - b_err.mean()) / a_err.mean() * 100)
    assert rep["verdict"].startswith("B (challenger) has the lower MAPE") and rep["arms"]["B"]["actuals"] == 150

    same = ABTest(ABConfig(min_actuals=30), {})
    for e in np.abs(rng.normal(20, 5, 100)):
        same.record("A", e)
    for e in np.abs(rng.normal(20, 5, 100)):
        same.record("B", e)
    assert not same.report()["significant"] and "no significant difference" in same.report()["verdict"]


# ---------------------------------------------------------------------------------------------------- API
@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> tuple[Path, Path]:
    from nam_mmm.serving.artifact import export_artifact

    base = tmp_path_factory.mktemp("ab")
    train_in_process(base / "run0", ["seed=0"])
    train_in_process(base / "run1", ["seed=1", "trainer.max_epochs=5"])  # a weaker challenger
    return export_artifact(base / "run0", base / "m0"), export_artifact(base / "run1", base / "m1")


def test_the_api_routes_between_two_models_and_analyses_the_errors(two_models, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from nam_mmm.serving.api import ServeConfig, create_app
    from nam_mmm.serving.artifact import ModelArtifact

    champion, challenger = two_models
    cfg = ServeConfig(model_dir=str(champion), challenger_dir=str(challenger), ab={"share": 0.5, "seed": 3, "min_actuals": 5}, monitor={"dir": str(tmp_path), "min_rows": 8, "check_every": 8, "min_actuals": 5})
    client = TestClient(create_app(cfg), raise_server_exceptions=False)
    versions = {"A": ModelArtifact.load(champion).version, "B": ModelArtifact.load(challenger).version}
    ref = ModelArtifact.load(champion).reference
    last = ref[ref["period"] == ref["period"].max()].drop(columns=["gmv", "fit_weight"])
    truth = ref[ref["period"] == ref["period"].max()]["gmv"].to_numpy()
    arms = []
    for k in range(24):  # each request: the 4 SKUs of a future week
        period = (pd.Timestamp(last["period"].iloc[0]) + pd.Timedelta(weeks=k + 1)).strftime("%Y-%m-%d")
        body = client.post("/predict", json={"rows": last.assign(period=period).to_dict("records"), "request_id": f"r{k}"}).json()
        arms.append(body["arm"])
        assert body["model"] == versions[body["arm"]]
        assert body["arm"] == ("B" if split_value(3, f"r{k}") < 0.5 else "A")  # the seeded split decides
        out = client.post("/actuals", json={"rows": [{"period": period, "sku": s, "gmv": float(g)} for s, g in zip(last["sku"], truth, strict=True)]}).json()
        assert out["matched"] == 4
    assert {"A", "B"} == set(arms)
    rep = client.get("/ab").json()
    assert rep["arms"]["A"]["requests"] == arms.count("A") and rep["arms"]["B"]["actuals"] == 4 * arms.count("B")
    assert rep["p_value"] is not None and rep["improvement_pct"] is not None and rep["verdict"]
    mon = client.get("/monitor").json()
    assert mon["matched"] == 96 and mon["online_mape"] is not None and {r["feature"] for r in mon["drift"]} >= {"price", "spend_tv", "sku"}
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 96 and {json.loads(line)["arm"] for line in lines} == {"A", "B"}
    assert client.get("/health").json()["challenger"] == versions["B"]
