"""Retraining never loses the good model (issue 13): the decision rules, the combined data, and a served model
whose pointer and files stay byte for byte as they were when the new model fails validation, when the retraining
is killed halfway, and when it crashes while the new artifact is written or switched; a new model that passes is
switched atomically and picked up by a running server.

The real retrainings run ``train.py`` in a child process on the tiny synthetic panel (2 × 2 SKUs, 40 → 46
weeks, walk-forward with 6-week folds).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO_ROOT, train_in_process
from nam_mmm.serving.retrain import RetrainConfig, RetrainPolicy, combine_csv, decide, retrain
from nam_mmm.serving.store import ModelStore

WALK_FORWARD = ["validation=walk_forward", "data.walk_forward.initial_train=24", "data.walk_forward.test_size=6", "data.walk_forward.step=6", "data.walk_forward.val_size=4"]
LOOSE = {"min_r2": -10.0, "max_r2_std": 10.0, "max_r2_range": 10.0, "max_elasticity_cv": 100.0}  # any finite model passes
IMPOSSIBLE = {"min_r2": 1.01}  # R² cannot exceed 1: every model fails
NEW_PERIODS = ["data.source.n_periods=46", "validation.splitter.initial_train=28"]  # 6 new weeks; the last fold tests only them


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("retrain")
    train_in_process(base / "served", WALK_FORWARD)
    train_in_process(base / "other", [*WALK_FORWARD, "seed=1"])  # a second finished run (stands in for a retraining's output)
    return {"served": base / "served", "other": base / "other", "base": base}


@pytest.fixture(scope="module")
def pristine_store(runs) -> Path:
    return ModelStore.init(runs["base"] / "pristine", runs["served"]).root


@pytest.fixture
def store(pristine_store, tmp_path) -> ModelStore:
    """A fresh copy of the store for each test (a passing retraining changes it)."""
    return ModelStore(shutil.copytree(pristine_store, tmp_path / "store"))


def snapshot(store: ModelStore) -> dict[str, str]:
    """Every byte the served model depends on: current.json and every file under models/."""
    files = {"current.json": store.pointer.read_bytes().hex()}
    for p in sorted(store.models.rglob("*")):
        if p.is_file():
            files[str(p.relative_to(store.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return files


def history(store: ModelStore) -> list[dict]:
    return [json.loads(line) for line in store.history.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------- decision
META = {"version": "v1", "trained_at": "2026-01-01T00:00:00Z", "data": {"last_period": "2025-12-29"}}
NOW = datetime(2026, 1, 31, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "kwargs, retrain_, text",
    [
        (dict(new_periods=0, online_mape=10.0, actuals=50), False, "no rule fired"),
        (dict(new_periods=0, online_mape=30.0, actuals=50), True, "online MAPE 30.00 % is above 25 %"),
        (dict(new_periods=0, online_mape=30.0, actuals=5), False, "no rule fired"),  # too few actuals to judge
        (dict(new_periods=4, online_mape=None, actuals=0), True, "4 new period(s) after 2025-12-29"),
        (dict(new_periods=3, online_mape=None, actuals=0), False, "3 new period(s)"),
        (dict(new_periods=0, online_mape=None, actuals=0, now=NOW + timedelta(days=70)), True, "days old (more than 90)"),
    ],
)
def test_the_decision_says_why(kwargs, retrain_, text) -> None:
    d = decide(RetrainPolicy(max_mape=25.0, min_actuals=10, min_new_periods=4, max_age_days=90.0), META, **{"now": NOW, **kwargs})
    assert d.retrain is retrain_ and text in "; ".join(d.reasons)


def test_a_rule_set_to_null_is_off() -> None:
    d = decide(RetrainPolicy(max_mape=None, min_new_periods=None, max_age_days=None), META, 100, 99.0, 1000, NOW + timedelta(days=999))
    assert not d.retrain


def test_new_data_is_appended_and_replaces_the_same_period_and_unit(tmp_path) -> None:
    from nam_mmm.errors import ConfigError

    old = pd.DataFrame({"date": ["2024-01-01", "2024-01-01", "2024-02-01"], "brand": "b", "sku": ["s1", "s2", "s1"], "gmv": ["1", "2", "3"]})
    new = pd.DataFrame({"date": ["2024-02-01", "2024-03-01"], "brand": "b", "sku": ["s1", "s1"], "gmv": ["30", "4"]})
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    out = pd.read_csv(combine_csv(tmp_path / "old.csv", tmp_path / "new.csv", tmp_path / "both.csv", ["date", "brand", "sku"]))
    assert sorted(zip(out["date"], out["sku"], out["gmv"], strict=True)) == [("2024-01-01", "s1", 1), ("2024-01-01", "s2", 2), ("2024-02-01", "s1", 30), ("2024-03-01", "s1", 4)]
    new.drop(columns=["gmv"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ConfigError, match="missing: gmv"):
        combine_csv(tmp_path / "old.csv", tmp_path / "bad.csv", tmp_path / "x.csv", ["date", "brand", "sku"])


def test_no_retraining_when_no_rule_fires(store) -> None:
    before = snapshot(store)
    out = retrain(RetrainConfig(store=str(store.root), policy={"max_age_days": None}))  # same data, no actuals, fresh model
    assert out["outcome"] == "skipped" and "no rule fired" in out["reason"]
    assert snapshot(store) == before and history(store)[-1]["outcome"] == "skipped"
    assert out["work_dir"] is None and not any((store.root / "retrain").iterdir())


# ---------------------------------------------------------------------------------------------------- the served model survives
def test_a_new_model_that_fails_validation_leaves_the_served_model_untouched(store) -> None:
    before, served = snapshot(store), store.current_version()
    out = retrain(RetrainConfig(store=str(store.root), overrides=NEW_PERIODS, acceptance=IMPOSSIBLE))
    assert out["decision"]["retrain"] and "6 new period(s)" in out["decision"]["reasons"][0]
    assert out["outcome"] == "rejected", out.get("reason")
    assert "fails the walk-forward acceptance" in out["reason"] and "below the 1.01 limit" in out["reason"] and served in out["reason"]
    assert snapshot(store) == before and store.current_version() == served and store.versions() == [served]
    assert (Path(out["work_dir"]) / "run" / "acceptance.json").exists()  # the rejected run is kept for inspection, outside models/
    assert history(store)[-1]["outcome"] == "rejected"


def test_a_retraining_killed_halfway_leaves_the_served_model_untouched(store) -> None:
    before, served = snapshot(store), store.current_version()
    request = store.current().predictor.request_rows(store.current().reference)
    expected = store.current().predictor.predict(request)["gmv"].to_numpy()
    endless = '["trainer.max_epochs=100000","trainer.min_epochs=100000","callbacks.early_stopping.patience=100000"]'
    proc = subprocess.Popen(
        [sys.executable, "-m", "nam_mmm.serving.retrain", f"store={store.root}", "force=true", f"overrides={endless}"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        started = None
        while time.monotonic() < deadline and proc.poll() is None:  # bounded wait until training is under way
            started = next(iter((store.root / "retrain").glob("*/run/validation.json")), None) if (store.root / "retrain").exists() else None
            if started is not None:
                break
            time.sleep(0.2)
        assert started is not None, "the retraining did not start training within 120 s"
        time.sleep(1.0)  # inside the training loop
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the retrainer and its training child, halfway
        proc.wait(timeout=30)
    assert snapshot(store) == before and store.current_version() == served
    again = store.current().predictor.predict(request)["gmv"].to_numpy()
    assert (again == expected).all()  # the served model still loads and predicts bit-identically


def _fake_training(runs, passed: bool):
    """A ``subprocess.run`` stand-in: the training 'writes' the other finished run into its run folder."""

    def run(cmd, **kwargs):
        dest = Path(next(a.split("=", 1)[1] for a in cmd if a.startswith("hydra.run.dir=")))
        shutil.copytree(runs["other"], dest)
        acc = json.loads((dest / "acceptance.json").read_text())
        (dest / "acceptance.json").write_text(json.dumps({**acc, "passed": passed}))
        return subprocess.CompletedProcess(cmd, 0)

    return run


@pytest.mark.parametrize("where", ["export", "switch"])
def test_a_crash_while_the_new_model_is_written_or_switched_leaves_the_served_model(store, runs, monkeypatch, where) -> None:
    import nam_mmm.serving.retrain as rt
    import nam_mmm.serving.store as st

    before, served = snapshot(store), store.current_version()
    monkeypatch.setattr(rt.subprocess, "run", _fake_training(runs, passed=True))

    def crash(*args, **kwargs):
        raise OSError(f"simulated crash during {where}")

    if where == "export":  # halfway through writing the artifact: predictor.pt and config copied, model.json not yet
        import nam_mmm.serving.artifact as art

        monkeypatch.setattr(art, "_reference_rows", crash)
    else:  # the artifact is complete in models/, the pointer replacement fails
        monkeypatch.setattr(st, "write_json_atomic", crash)
    with pytest.raises(OSError, match="simulated crash"):
        retrain(RetrainConfig(store=str(store.root), force=True, warm_start=False))
    assert store.pointer.read_bytes().hex() == before["current.json"] and store.current_version() == served
    assert {k: v for k, v in snapshot(store).items() if served in k} == {k: v for k, v in before.items() if served in k}
    assert not [p for p in store.models.iterdir() if p.name.startswith(".")]  # no half artifact left behind
    assert store.current().version == served


def test_a_new_model_that_passes_is_switched_and_picked_up_by_the_running_server(store, runs) -> None:
    from fastapi.testclient import TestClient

    from nam_mmm.serving.api import ServeConfig, create_app

    before, served = snapshot(store), store.current_version()
    client = TestClient(create_app(ServeConfig(model_dir=str(store.root), reload_check_s=0.0)))
    assert client.get("/model").json()["version"] == served
    rows = store.current().reference
    request = rows[rows["period"] == rows["period"].max()].drop(columns=["gmv", "fit_weight"]).to_dict("records")

    out = retrain(RetrainConfig(store=str(store.root), overrides=NEW_PERIODS, acceptance=LOOSE))
    assert out["outcome"] == "switched", out.get("reason")
    new = out["new_version"]
    assert store.current_version() == new and sorted(store.versions()) == sorted([served, new])
    assert json.loads(store.pointer.read_text())["previous"] == served
    assert {k: v for k, v in snapshot(store).items() if served in k} == {k: v for k, v in before.items() if served in k}  # old artifact as it was
    assert out["warm_started_folds"] == 1  # only the fold that tests the 6 new weeks starts from the served model
    assert out["curve_shift"]["elasticities"]["price"]["old"] != out["curve_shift"]["elasticities"]["price"]["new"]
    meta = store.current().metadata
    assert meta["data"]["n_periods"] == 46 and meta["acceptance"]["passed"]

    assert client.get("/model").json()["version"] == new  # the running server switched without a restart
    r = client.post("/predict", json={"rows": request})
    assert r.status_code == 200 and r.json()["model"] == new
    assert [h["event"] for h in history(store)][-2:] == ["switch", "retrain"]
