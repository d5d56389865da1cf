"""Walk-forward validation (seed §6.5): the run files, no leakage of test targets, the acceptance verdicts, the
fold ensemble, nested MLflow runs, and DT Mart's six monthly folds.

One tiny walk-forward run (2 brands × 2 SKUs × 40 weeks, 3 folds of 6 test weeks, MLflow into a temporary
sqlite store) is shared by the file and MLflow tests; the DT Mart command-line run starts in the background
when the module starts and is collected by its test at the end.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from helpers import DTMART_DIR, REPO_ROOT, TINY_RUN, compose_train, requires_dtmart, train_in_process
from nam_mmm.data.folds.datamodule import PanelDataModule
from nam_mmm.data.folds.splitters import WalkForwardSplitter
from nam_mmm.data.panel import GMV, PERIOD, SKU
from nam_mmm.entry import load_table, make_splitter
from nam_mmm.evaluation.walk_forward import AcceptanceCriteria, acceptance, aggregate, ensemble_tables
from nam_mmm.models.ensemble import FoldEnsemble
from nam_mmm.training.loggers import BufferedMLFlowLogger
from nam_mmm.training.module import NAMModule

# 40 weeks: folds train on the first 22 / 28 / 34 weeks (the last 4 of them validate) and test the next 6
WALK_FORWARD = [
    "validation=walk_forward",
    "data.walk_forward.initial_train=22",
    "data.walk_forward.test_size=6",
    "data.walk_forward.step=6",
    "data.walk_forward.val_size=4",
    "trainer.max_epochs=15",
]
PERIODS = pd.date_range("2023-01-02", periods=40, freq="W-MON")  # the synthetic default calendar
TEST_PERIODS = [PERIODS[22 + 6 * k : 28 + 6 * k] for k in range(3)]
N_SKUS = 4
CRITERIA = {"overall_r2", "r2_std", "r2_range", "elasticity_cv[price]", "elasticity_cv[cross_price]"}


# ---------------------------------------------------------------------------------------------- shared runs


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlflow_store")  # outside the run folder, whose files are copied as artifacts


@pytest.fixture(scope="module", autouse=True)
def dtmart_cli(tmp_path_factory):
    """``python train.py data=dtmart validation=walk_forward ...`` started when the module starts: (folder, process)."""
    if not DTMART_DIR.exists():
        yield None
        return
    out = tmp_path_factory.mktemp("dtmart") / "run"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    args = ["data=dtmart", "validation=walk_forward", "strategy=joint", "logger=none", "trainer.max_epochs=40", f"hydra.run.dir={out}"]
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


@pytest.fixture(scope="module")
def wf_run(tmp_path_factory, mlflow_store) -> Path:
    """The tiny walk-forward run with MLflow logging; returns its run folder."""
    out = tmp_path_factory.mktemp("walk_forward") / "run"
    base = [o for o in TINY_RUN if o != "logger=none"]
    train_in_process(
        out,
        [
            *WALK_FORWARD,
            "logger=mlflow",
            f"logger.mlflow.tracking_uri=sqlite:///{mlflow_store}/mlflow.db",
            f"logger.mlflow.artifact_location={mlflow_store}/artifacts",
        ],
        base=base,
    )
    return out


def fold_data(out: Path):
    """(table, folds) of a finished run folder, rebuilt from its config.yaml."""
    cfg = OmegaConf.load(out / "config.yaml")
    table = load_table(cfg.data)
    return table, make_splitter(cfg.validation).split(table.panel.periods)


def span(periods: pd.DatetimeIndex) -> str:
    return f"{periods[0]:%Y-%m-%d} … {periods[-1]:%Y-%m-%d} ({len(periods)})"


# ---------------------------------------------------------------------------------------------- run files
def test_walk_forward_writes_one_row_per_fold_with_the_configured_test_periods(wf_run) -> None:
    folds = pd.read_csv(wf_run / "folds.csv")
    assert folds["fold"].tolist() == [0, 1, 2]
    assert folds["test"].tolist() == [span(t) for t in TEST_PERIODS]
    # expanding window: each fold trains on everything before its 4 validation weeks
    assert folds["train"].tolist() == [span(PERIODS[: 18 + 6 * k]) for k in range(3)]
    assert folds["val"].tolist() == [span(PERIODS[18 + 6 * k : 22 + 6 * k]) for k in range(3)]
    assert (folds["n"] == 6 * N_SKUS).all()
    assert np.isfinite(folds[["r2", "mape", "rmse"]].to_numpy()).all()
    for k in range(3):
        assert (wf_run / f"fold_{k}" / "model.ckpt").is_file() and (wf_run / f"fold_{k}" / "metrics.json").is_file()


def test_oos_predictions_cover_every_test_row_once(wf_run) -> None:
    oos = pd.read_csv(wf_run / "oos_predictions.csv", parse_dates=["date"])
    assert {"fold", "date", "sku", "actual", "predicted"} <= set(oos.columns)
    assert len(oos) == 3 * 6 * N_SKUS
    assert not oos.duplicated(["date", "sku"]).any()
    for k, test in enumerate(TEST_PERIODS):
        assert sorted(oos.loc[oos["fold"] == k, "date"].unique()) == list(test)
        assert (oos.loc[oos["fold"] == k].groupby("date")["sku"].nunique() == N_SKUS).all()
    # actual = the panel's GMV of that week and SKU; predictions are positive rupees
    table, _ = fold_data(wf_run)
    gmv = table.frame.set_index([PERIOD, SKU])[GMV]
    np.testing.assert_allclose(oos["actual"], gmv.loc[list(zip(oos["date"], oos["sku"], strict=True))].to_numpy(), rtol=1e-9)
    assert (oos["predicted"] > 0).all() and np.isfinite(oos["predicted"]).all()


def test_acceptance_json_matches_the_fold_table_and_pooled_predictions(wf_run) -> None:
    verdict = json.loads((wf_run / "acceptance.json").read_text())
    rows = {r["criterion"]: r for r in verdict["criteria"]}
    assert set(rows) == CRITERIA
    assert verdict["passed"] == all(r["passed"] for r in rows.values())
    for r in rows.values():
        assert (r["reason"] == "") == r["passed"]

    oos = pd.read_csv(wf_run / "oos_predictions.csv")
    fit = oos[oos["fit_weight"] > 0]
    a, p = fit["actual"].to_numpy(), fit["predicted"].to_numpy()
    pooled = 1 - ((a - p) ** 2).sum() / ((a - a.mean()) ** 2).sum()
    assert rows["overall_r2"]["value"] == pytest.approx(pooled, abs=1e-4)
    r2 = pd.read_csv(wf_run / "folds.csv")["r2"]
    assert rows["r2_std"]["value"] == pytest.approx(r2.std(ddof=1), abs=1e-4)
    assert rows["r2_range"]["value"] == pytest.approx(r2.max() - r2.min(), abs=1e-4)
    stability = pd.read_csv(wf_run / "elasticity_stability.csv").set_index("feature")
    assert rows["elasticity_cv[price]"]["value"] == pytest.approx(stability.loc["price", "cv"], abs=1e-4)
    assert (stability["folds"] == 3).all()

    metrics = json.loads((wf_run / "metrics.json").read_text())
    # predictions are float32: the CSV keeps their shortest float32 text, which reads back within ~3e-8 relative
    assert metrics["test"]["r2"] == pytest.approx(pooled, rel=1e-6)
    assert metrics["acceptance_passed"] == verdict["passed"]


def test_ensemble_elasticities_and_roi_carry_fold_intervals(wf_run) -> None:
    el = pd.read_csv(wf_run / "elasticities.csv")
    assert {"level", "unit", "feature", "elasticity", "lower", "upper", "members"} <= set(el.columns)
    assert (el["members"] == 3).all()
    assert ((el["lower"] <= el["elasticity"] + 1e-12) & (el["elasticity"] <= el["upper"] + 1e-12)).all()
    assert (el["upper"] > el["lower"]).any()  # three different fold models do disagree somewhere
    roi = pd.read_csv(wf_run / "roi.csv")
    assert roi["channel"].tolist() == ["tv", "digital", "sponsorship", "search", "social"]
    assert ((roi["roi_lower"] <= roi["roi"] + 1e-12) & (roi["roi"] <= roi["roi_upper"] + 1e-12)).all()
    assert np.isfinite(roi[["roi", "roi_lower", "roi_upper"]].to_numpy()).all()


def test_ensemble_pt_reloads_as_the_mean_of_the_fold_models(wf_run) -> None:
    ensemble = FoldEnsemble.from_dict(torch.load(wf_run / "ensemble.pt"))
    ensemble.eval()
    assert len(ensemble.members) == 3
    table, folds = fold_data(wf_run)
    oos = pd.read_csv(wf_run / "oos_predictions.csv")
    rows = PanelDataModule(table, folds[-1]).splits["all"]
    members = []
    for k, fold in enumerate(folds):
        fold_model = NAMModule.load_from_checkpoint(wf_run / f"fold_{k}" / "model.ckpt", map_location="cpu").model.eval()
        member_state, fold_state = ensemble.members[k].state_dict(), fold_model.state_dict()
        assert member_state.keys() == fold_state.keys()
        assert all(torch.equal(member_state[n], fold_state[n]) for n in fold_state), f"member {k} is not fold {k}'s model"
        # member k predicts fold k's test weeks exactly as oos_predictions.csv has them
        test = PanelDataModule(table, fold).splits["test"]
        with torch.no_grad():
            pred = ensemble.members[k](test["x"], test["media"], test["brand"], test["sku"])["log_gmv"].exp().numpy()
        np.testing.assert_allclose(oos.loc[oos["fold"] == k, "predicted"].to_numpy(), pred, rtol=1e-5)
        with torch.no_grad():
            members.append(fold_model(rows["x"], rows["media"], rows["brand"], rows["sku"])["log_gmv"])
    with torch.no_grad():
        out = ensemble(rows["x"], rows["media"], rows["brand"], rows["sku"])
    stacked = torch.stack(members)
    torch.testing.assert_close(out["log_gmv"], stacked.mean(0))
    torch.testing.assert_close(out["log_gmv_sd"], stacked.std(0))
    assert (out["log_gmv_sd"] > 0).any()


# ---------------------------------------------------------------------------------------------- no leakage
@pytest.fixture(scope="module")
def tiny_table():
    cfg = compose_train(TINY_RUN)
    return cfg, load_table(cfg.data)


def corrupt_after(table, first: pd.Timestamp, factor: float = 1000.0):
    """The feature table with every GMV from ``first`` on multiplied by ``factor``."""
    frame = table.frame.copy()
    frame.loc[frame[PERIOD] >= first, GMV] *= factor
    return replace(table, frame=frame)


def test_scaling_never_sees_gmv_after_the_training_window(tiny_table) -> None:
    _, table = tiny_table
    folds = WalkForwardSplitter(initial_train=22, test_size=6, step=6, val_size=4).split(table.panel.periods)
    assert len(folds) == 3
    for fold in folds:
        clean = PanelDataModule(table, fold).scaler.to_dict()
        for first in (fold.test[0], fold.val[0]):  # test periods and later; also the validation weeks
            assert PanelDataModule(corrupt_after(table, first), fold).scaler.to_dict() == clean, f"fold {fold.index}, GMV from {first.date()}"
        # the check can fail: GMV of the last training week does move the target's centre
        leaked = PanelDataModule(corrupt_after(table, fold.train[-1]), fold).scaler
        assert not np.allclose(leaked.y_center, clean["y_center"])


def _train_fold(table, fold, out_dir: Path) -> dict[str, torch.Tensor]:
    """Train one fold as ``train.py`` does (run_folds, real trainer and callbacks config); returns the model's state."""
    from hydra.utils import instantiate

    from nam_mmm.training.loss import LossConfig
    from nam_mmm.training.runner import ModelSettings, model_config
    from nam_mmm.training.walk_forward import run_folds

    cfg = compose_train([*TINY_RUN, "trainer.max_epochs=12", "trainer.check_val_every_n_epoch=2"])
    settings = ModelSettings(**OmegaConf.to_container(cfg.model, resolve=True))
    constraints = OmegaConf.to_container(cfg.constraints, resolve=True)
    loss = vars(LossConfig(**OmegaConf.to_container(cfg.loss, resolve=True)))

    def make_module(dm):
        return NAMModule(model_config(dm, settings, constraints), loss=loss, max_epochs=12, **OmegaConf.to_container(cfg.optimizer, resolve=True))

    def make_trainer(fold, module):
        callbacks = [instantiate(c) for c in cfg.callbacks.values()]
        return instantiate(cfg.trainer, callbacks=callbacks, logger=False)

    (run,) = run_folds(table, [fold], make_module, make_trainer, lambda f: out_dir / "model.ckpt", seed=0)
    return {k: v.clone() for k, v in run.model.state_dict().items()}


def test_corrupted_test_gmv_leaves_the_trained_model_bit_identical(tiny_table, tmp_path) -> None:
    _, table = tiny_table
    fold = WalkForwardSplitter(initial_train=22, test_size=6, step=6, val_size=4).split(table.panel.periods)[1]
    clean = _train_fold(table, fold, tmp_path / "clean")
    corrupted = _train_fold(corrupt_after(table, fold.test[0]), fold, tmp_path / "corrupted")
    assert clean.keys() == corrupted.keys()
    different = [k for k in clean if not torch.equal(clean[k], corrupted[k])]
    assert not different, f"test-period GMV changed {different}"
    # the comparison can fail: GMV from the last training week on does change the model
    assert any(not torch.equal(clean[k], v) for k, v in _train_fold(corrupt_after(table, fold.train[-1]), fold, tmp_path / "leak").items())


def test_cleaning_never_sees_gmv_after_the_training_window(tiny_table) -> None:
    """The whole pipeline (source → cleaning → features → scaling) for a fold whose test and later periods are more
    than half the calendar (like DT Mart's first fold): corrupting their GMV changes nothing the fold trains on."""
    from hydra.utils import instantiate

    from nam_mmm.data.features.table import FeatureConfig, build_features
    from nam_mmm.data.quality.cleaning import CleaningConfig, prepare_panel

    cfg, _ = tiny_table
    fold = WalkForwardSplitter(initial_train=18, test_size=6, step=6, val_size=4).split(PERIODS)[0]

    def table(corrupt: bool):
        panel = instantiate(cfg.data.source, _convert_="all")
        if corrupt:
            panel.frame.loc[panel.frame[PERIOD] >= fold.test[0], GMV] *= 1000
        prepare_panel(panel, CleaningConfig(**OmegaConf.to_container(cfg.data.cleaning, resolve=True)))
        return build_features(panel, FeatureConfig(**OmegaConf.to_container(cfg.data.features, resolve=True)))

    clean, corrupted = PanelDataModule(table(False), fold), PanelDataModule(table(True), fold)
    assert [s.name for s in corrupted.feature_specs] == [s.name for s in clean.feature_specs]
    assert corrupted.scaler.to_dict() == clean.scaler.to_dict()
    for key in ("x", "weight", "log_gmv"):
        assert torch.equal(corrupted.splits["train"][key], clean.splits["train"][key]), key


# ---------------------------------------------------------------------------------------------- acceptance
PASSING = {"pooled": {"r2": 0.90}, "fold_r2_std": 0.05, "fold_r2_range": 0.12, "elasticity_cv": {"price": 0.10, "cross_price": 0.20}}


def with_value(criterion: str, value) -> dict:
    s = json.loads(json.dumps(PASSING))
    if criterion == "overall_r2":
        s["pooled"]["r2"] = value
    elif criterion.startswith("elasticity_cv["):
        s["elasticity_cv"][criterion[len("elasticity_cv[") : -1]] = value
    else:
        s[{"r2_std": "fold_r2_std", "r2_range": "fold_r2_range"}[criterion]] = value
    return s


def test_acceptance_passes_every_criterion_of_a_good_walk_forward() -> None:
    table = acceptance(PASSING, AcceptanceCriteria())
    assert table["criterion"].tolist() == ["overall_r2", "r2_std", "r2_range", "elasticity_cv[price]", "elasticity_cv[cross_price]"]
    assert table["passed"].all() and (table["reason"] == "").all()
    assert table["threshold"].tolist() == [">= 0.75", "<= 0.1", "<= 0.25", "<= 0.3", "<= 0.3"]


@pytest.mark.parametrize(
    ("criterion", "value", "words"),
    [
        ("overall_r2", 0.60, ["pooled out-of-sample R²", "0.600", "below", "0.75"]),
        ("r2_std", 0.15, ["standard deviation of fold R²", "0.150", "above", "0.1"]),
        ("r2_range", 0.40, ["range of fold R²", "0.400", "above", "0.25"]),
        ("elasticity_cv[price]", 0.45, ["price elasticity", "0.450", "above", "0.3"]),
        ("elasticity_cv[cross_price]", 0.31, ["cross_price elasticity", "0.310", "above", "0.3"]),
    ],
)
def test_each_criterion_fails_alone_with_its_value_and_threshold(criterion: str, value: float, words: list[str]) -> None:
    table = acceptance(with_value(criterion, value), AcceptanceCriteria()).set_index("criterion")
    assert table.index[~table["passed"]].tolist() == [criterion]
    row = table.loc[criterion]
    assert row["value"] == pytest.approx(value)
    for word in words:
        assert word in row["reason"], (word, row["reason"])
    assert (table.drop(index=criterion)["reason"] == "").all()


@pytest.mark.parametrize(("criterion", "at_limit"), [("overall_r2", 0.75), ("r2_std", 0.10), ("r2_range", 0.25), ("elasticity_cv[price]", 0.30)])
def test_a_value_exactly_at_the_limit_passes(criterion: str, at_limit: float) -> None:
    assert acceptance(with_value(criterion, at_limit), AcceptanceCriteria())["passed"].all()


@pytest.mark.parametrize(
    ("criterion", "missing"),
    [("overall_r2", float("nan")), ("r2_std", np.nan), ("elasticity_cv[price]", None), ("elasticity_cv[cross_price]", float("inf"))],
)
def test_a_value_that_could_not_be_computed_fails(criterion: str, missing) -> None:
    table = acceptance(with_value(criterion, missing), AcceptanceCriteria()).set_index("criterion")
    assert table.index[~table["passed"]].tolist() == [criterion]
    assert "could not be computed" in table.loc[criterion, "reason"]


def test_custom_thresholds_and_stability_features() -> None:
    summary = {**PASSING, "elasticity_cv": {"price": 0.10, "media_tv": 0.5}}
    criteria = AcceptanceCriteria(min_r2=0.95, max_elasticity_cv=0.4, stability_features=["price", "tv", "nps"])
    table = acceptance(summary, criteria).set_index("criterion")
    # channels are looked up as media_<name>; a feature the model does not have (nps) is not judged
    assert table.index.tolist() == ["overall_r2", "r2_std", "r2_range", "elasticity_cv[price]", "elasticity_cv[media_tv]"]
    assert table.index[~table["passed"]].tolist() == ["overall_r2", "elasticity_cv[media_tv]"]
    assert "0.95" in table.loc["overall_r2", "reason"] and "0.4" in table.loc["elasticity_cv[media_tv]", "reason"]


def test_aggregate_pools_test_rows_and_summarizes_fold_r2() -> None:
    oos = pd.DataFrame(
        {
            "sku": ["a", "b", "a", "b", "a"],
            "actual": [100.0, 200.0, 300.0, 400.0, 50.0],
            "predicted": [110.0, 190.0, 320.0, 380.0, 5000.0],
            "fit_weight": [1.0, 1.0, 1.0, 1.0, 0.0],  # an excluded row (outage) must not count
        }
    )
    folds = pd.DataFrame({"r2": [0.7, 0.8, 0.9], "mape": [10.0, 20.0, 30.0]})
    stability = pd.DataFrame({"unit": ["all", "all"], "feature": ["price", "cross_price"], "cv": [0.25, np.nan]})
    summary = aggregate(oos, folds, stability)
    # by hand: mean 250, SST = 150² + 50² + 50² + 150² = 50 000, SSE = 10² + 10² + 20² + 20² = 1 000
    assert summary["pooled"]["r2"] == pytest.approx(0.98)
    assert summary["pooled"]["mape"] == pytest.approx((0.10 + 0.05 + 20 / 300 + 0.05) / 4 * 100)
    assert summary["pooled"]["n"] == 4
    assert summary["fold_r2_mean"] == pytest.approx(0.8)
    assert summary["fold_r2_std"] == pytest.approx(0.1)
    assert summary["fold_r2_range"] == pytest.approx(0.2)
    assert summary["fold_mape_mean"] == pytest.approx(20.0)
    assert summary["elasticity_cv"] == {"price": 0.25, "cross_price": None}
    assert summary["folds"] == 3
    verdict = acceptance(summary, AcceptanceCriteria()).set_index("criterion")
    assert "could not be computed" in verdict.loc["elasticity_cv[cross_price]", "reason"]


# ---------------------------------------------------------------------------------------------- ensemble tables
def test_ensemble_tables_mean_and_interval_across_members() -> None:
    def el(values):
        return pd.DataFrame({"level": ["all", "all"], "unit": ["all", "all"], "feature": ["price", "media_tv"], "elasticity": values})

    def roi(roi_tv, roi_web):
        return pd.DataFrame(
            {
                "channel": ["tv", "web"],
                "spend_inr": [100.0, 50.0],
                "contribution_inr": [100.0 * roi_tv, 50.0 * roi_web],
                "roi": [roi_tv, roi_web],
                "marginal_roi": [0.5, 0.25],
                "adstock_decay": [0.3, 0.6],
            }
        )

    elasticities, rois = ensemble_tables([el([-1.0, 0.1]), el([-2.0, 0.1]), el([-3.0, 0.1])], [roi(1.0, 4.0), roi(2.0, 4.0), roi(3.0, 4.0)])
    e = elasticities.set_index("feature")
    assert e.index.tolist() == ["price", "media_tv"]  # order of the members' rows
    assert e.loc["price", "elasticity"] == pytest.approx(-2.0) and e.loc["price", "sd"] == pytest.approx(1.0)
    assert e.loc["price", "lower"] == pytest.approx(-2.0 - 1.96) and e.loc["price", "upper"] == pytest.approx(-2.0 + 1.96)
    assert e.loc["media_tv", "lower"] == pytest.approx(0.1) and e.loc["media_tv", "upper"] == pytest.approx(0.1)
    assert (e["members"] == 3).all()

    r = rois.set_index("channel")
    assert r.index.tolist() == ["tv", "web"]
    assert r.loc["tv", "roi"] == pytest.approx(2.0) and r.loc["tv", "contribution_inr"] == pytest.approx(200.0)
    assert r.loc["tv", "roi_lower"] == pytest.approx(2.0 - 1.96) and r.loc["tv", "roi_upper"] == pytest.approx(2.0 + 1.96)
    assert r.loc["web", "roi_lower"] == r.loc["web", "roi_upper"] == pytest.approx(4.0)  # members agree: no spread
    assert r.loc["tv", "marginal_roi_lower"] == r.loc["tv", "marginal_roi_upper"] == pytest.approx(0.5)
    assert r.loc["web", "adstock_decay"] == pytest.approx(0.6) and r.loc["web", "spend_inr"] == pytest.approx(50.0)

    one, one_roi = ensemble_tables([el([-1.5, 0.2])], [roi(1.0, 2.0)])  # a single member: no interval, no NaN
    assert (one["lower"] == one["elasticity"]).all() and (one_roi["roi_upper"] == one_roi["roi"]).all()


# ---------------------------------------------------------------------------------------------- MLflow
def test_walk_forward_logs_a_parent_run_with_one_nested_run_per_fold(wf_run, mlflow_store) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{mlflow_store}/mlflow.db")
    experiment = client.get_experiment_by_name("nam-mmm")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 4
    (parent,) = parents
    children = sorted((r for r in runs if r is not parent), key=lambda r: r.data.tags["fold"])
    assert all(r.info.status == "FINISHED" for r in runs)
    assert parent.info.run_name == "synthetic-hill-joint-walk_forward"
    assert [r.data.tags["mlflow.parentRunId"] for r in children] == [parent.info.run_id] * 3
    assert [r.data.tags["fold"] for r in children] == ["0", "1", "2"]
    assert [r.info.run_name for r in children] == [f"synthetic-hill-joint-walk_forward-fold{k}" for k in range(3)]

    metrics = json.loads((wf_run / "metrics.json").read_text())
    assert parent.data.metrics["test.r2"] == pytest.approx(metrics["test"]["r2"])
    assert parent.data.metrics["acceptance_passed"] == float(metrics["acceptance_passed"])
    assert parent.data.metrics["walk_forward.fold_r2_std"] == pytest.approx(metrics["walk_forward"]["fold_r2_std"])
    assert "val/loss" not in parent.data.metrics  # fold curves live in the fold runs, not interleaved in the parent
    assert parent.data.params["validation.name"] == "walk_forward"
    assert {"acceptance.json", "folds.csv", "oos_predictions.csv", "ensemble.pt"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}

    for child in children:
        history = client.get_metric_history(child.info.run_id, "val/loss")
        steps = [m.step for m in history]
        assert len(history) >= 3 and steps == sorted(set(steps)), steps  # one value per validation, in order
        assert all(math.isfinite(m.value) for m in history)


def test_the_served_model_of_a_walk_forward_run_is_the_fold_ensemble(wf_run, mlflow_store) -> None:
    import mlflow

    from nam_mmm.serving.predictor import Predictor

    table, folds = fold_data(wf_run)
    predictor = Predictor.load(wf_run / "predictor.pt")
    served = predictor.predict(predictor.request_rows(table.frame))
    ensemble = FoldEnsemble.from_dict(torch.load(wf_run / "ensemble.pt", weights_only=False)).eval()
    dm = PanelDataModule(table, folds[-1])
    with torch.no_grad():
        b = dm.splits["all"]
        out = ensemble(b["x"], b["media"], b["brand"], b["sku"])
    np.testing.assert_allclose(served["gmv"].to_numpy(), out["log_gmv"].exp().numpy(), rtol=1e-5)
    np.testing.assert_allclose(served["log_gmv_sd"].to_numpy(), out["log_gmv_sd"].numpy(), atol=1e-6)
    assert (served["log_gmv_sd"] > 0).all()  # three fold models disagree a little: the spread is served too

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{mlflow_store}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("nam-mmm").experiment_id], filter_string="tags.model_uri != ''")
    assert [r.data.tags["model_uri"] for r in runs] == [f"runs:/{runs[0].info.run_id}/model"]  # the parent run, not the folds
    assert "fold" not in runs[0].data.tags


def test_buffered_mlflow_logger_writes_every_metric_with_its_step(mlflow_store) -> None:
    import mlflow

    uri = f"sqlite:///{mlflow_store}/mlflow.db"
    logger = BufferedMLFlowLogger(experiment_name="buffer-test", tracking_uri=uri, artifact_location=str(mlflow_store / "buffer_art"), flush_every=4)
    for step in range(10):
        logger.log_metrics({"loss": 1.0 / (step + 1), "lr": torch.tensor(0.01 * step), "note": "text is skipped"}, step=step)
    client = mlflow.MlflowClient(tracking_uri=uri)
    flushed = client.get_metric_history(logger.run_id, "loss")
    assert sorted(m.step for m in flushed) == list(range(8))  # two batches of 4 calls written, 2 calls still buffered
    logger.finalize("success")

    loss = sorted(client.get_metric_history(logger.run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in loss] == list(range(10))
    assert [m.value for m in loss] == pytest.approx([1.0 / (s + 1) for s in range(10)])
    lr = sorted(client.get_metric_history(logger.run_id, "lr"), key=lambda m: m.step)
    assert [m.value for m in lr] == pytest.approx([0.01 * s for s in range(10)])
    run = client.get_run(logger.run_id)
    assert "note" not in run.data.metrics and run.info.status == "FINISHED"


# ---------------------------------------------------------------------------------------------- DT Mart
@requires_dtmart
def test_dtmart_walk_forward_has_six_monthly_folds_and_a_verdict(dtmart_cli) -> None:
    out, proc = dtmart_cli
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    folds = pd.read_csv(out / "folds.csv")
    months = pd.date_range("2016-01-01", periods=6, freq="MS")
    assert folds["test"].tolist() == [span(pd.DatetimeIndex([m])) for m in months]
    assert (folds["epochs"] <= 40).all() and np.isfinite(folds["r2"]).all()
    oos = pd.read_csv(out / "oos_predictions.csv", parse_dates=["date"])
    assert sorted(oos["date"].unique()) == list(months) and not oos.duplicated(["date", "sku"]).any()

    verdict = json.loads((out / "acceptance.json").read_text())
    rows = {r["criterion"]: r for r in verdict["criteria"]}
    assert set(rows) == {"overall_r2", "r2_std", "r2_range", "elasticity_cv[price]"}  # no cross price in this model
    assert verdict["passed"] == all(r["passed"] for r in rows.values())
    for r in rows.values():
        assert r["passed"] or (str(r["threshold"]).split()[-1] in r["reason"] and math.isfinite(r["value"]))
    assert "acceptance: " + ("PASS" if verdict["passed"] else "FAIL") in stdout
