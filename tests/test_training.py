"""Training end to end: ``python train.py`` as users run it (files, table, exit codes), determinism, MLflow,
soft constraints, every model family, one-line errors, and DT Mart.

The command-line runs are subprocesses started together at the first test that needs one (two at a time on
the small CI machine); the other runs call :func:`nam_mmm.entry.train` in-process, the function
``train.py`` wraps, which skips the interpreter start-up.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import DTMART_DIR, REPO_ROOT, TINY_RUN, load_run, requires_dtmart, train_in_process
from nam_mmm.entry import one_line_errors, train
from nam_mmm.training.loss import LossConfig, shape_terms

SYNTHETIC_CHANNELS = ["tv", "digital", "sponsorship", "search", "social"]
DTMART_CHANNELS = ["tv", "digital", "sponsorship", "content_marketing", "online_marketing", "affiliates", "sem", "radio", "other"]
WALL_CLOCK_KEYS = {"fit_seconds", "wall_seconds"}


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python train.py <args>`` from the repository root, as a user types it."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, tuple[Path, Future]]:
    """Every command-line run of this module, started at once on two workers: name -> (folder, future)."""
    base = tmp_path_factory.mktemp("cli")
    plan = {
        "run_a": TINY_RUN,
        "run_b": TINY_RUN,  # the same config and seed again (determinism)
        "mlflow": [
            *[o for o in TINY_RUN if o != "logger=none"],
            "logger=mlflow",
            f"logger.mlflow.tracking_uri=sqlite:///{base}/mlflow_store/mlflow.db",
            f"logger.mlflow.artifact_location={base}/mlflow_store/artifacts",
        ],
        "missing_csv": ["data=panel_csv", "data.source.path=/nonexistent.csv", "logger=none"],
    }
    if DTMART_DIR.exists():
        plan["dtmart"] = ["data=dtmart", "model=beta_gamma", "logger=none", "trainer.max_epochs=20"]
    (base / "mlflow_store").mkdir()  # outside the run folder, whose files are copied into the artifacts
    pool = ThreadPoolExecutor(max_workers=2)
    runs = {name: (base / name, pool.submit(cli, *args, f"hydra.run.dir={base / name}")) for name, args in plan.items()}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)  # runs no selected test asked for are not started


def finished(cli_runs, name: str) -> tuple[Path, subprocess.CompletedProcess]:
    folder, future = cli_runs[name]
    return folder, future.result()


def without_wall_clock(d):
    if isinstance(d, dict):
        return {k: without_wall_clock(v) for k, v in d.items() if k not in WALL_CLOCK_KEYS}
    return d


# ---------------------------------------------------------------------------------------------- end to end
def test_train_py_end_to_end_writes_the_run_files(cli_runs) -> None:
    out, proc = finished(cli_runs, "run_a")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("metrics.json", "elasticities.csv", "contributions.csv", "roi.csv", "curves.csv", "model.ckpt", "config.yaml", "predictions.csv", "oos_predictions.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    # the printed results: accuracy table, ROI table, elasticities, and where the files went
    text = proc.stdout
    assert text.splitlines()[0].startswith("validation: 0 errors"), text[:300]  # the validation summary comes first
    header = next(line for line in text.splitlines() if line.lstrip().startswith("fold")).split()
    assert header[0] == "fold" and "r2" in header and any(h.startswith("mape") for h in header), text[:500]
    assert "ROI (training periods):" in text and "Elasticities by brand" in text
    assert f"run folder: {out}" in text
    assert "Traceback" not in proc.stderr

    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        assert math.isfinite(metrics[split]["r2"]) and metrics[split]["n"] > 0
    assert metrics["test"]["n"] == 6 * 4  # 6 test weeks × 4 SKUs
    assert {"own_price_elasticity_mae", "roi_rank_corr", "gap_r2"} <= set(metrics["recovery"])

    el = pd.read_csv(out / "elasticities.csv")
    assert {"level", "unit", "feature", "elasticity", "lower", "upper"} <= set(el.columns)
    assert set(el["level"]) == {"sku", "brand", "all"}
    assert el.loc[el["level"] == "sku", "unit"].nunique() == 4 and el.loc[el["level"] == "brand", "unit"].nunique() == 2
    assert {f"media_{c}" for c in SYNTHETIC_CHANNELS} | {"price"} <= set(el["feature"])
    assert (el["lower"] <= el["upper"] + 1e-12).all()
    own = el[el["feature"] == "price"]
    assert (own[["elasticity", "lower", "upper"]] <= 0).all().all()  # hard constraints: price never raises GMV
    media = el[el["feature"].str.startswith("media_")]
    assert (media[["elasticity", "lower", "upper"]] >= 0).all().all()

    roi = pd.read_csv(out / "roi.csv")
    assert {"channel", "roi", "marginal_roi", "spend_inr", "contribution_inr"} <= set(roi.columns)
    assert roi["channel"].tolist() == SYNTHETIC_CHANNELS
    np.testing.assert_allclose(roi["roi"], roi["contribution_inr"] / roi["spend_inr"], rtol=1e-6)
    assert (roi["marginal_roi"] >= 0).all() and (roi["marginal_roi"] <= roi["roi"]).all()  # concave media
    contrib = pd.read_csv(out / "contributions.csv")
    assert contrib["channel"].tolist() == SYNTHETIC_CHANNELS
    np.testing.assert_allclose(contrib["contribution_inr"], roi["contribution_inr"], rtol=1e-6)

    curves = pd.read_csv(out / "curves.csv")
    assert {"feature", "role", "brand", "x", "z", "effect_log_gmv"} <= set(curves.columns)
    for (feature, _), c in curves.groupby(["feature", "brand"]):
        c = c.sort_values("x")
        steps = np.diff(c["effect_log_gmv"].to_numpy())
        if feature == "price":
            assert (steps <= 1e-6).all(), "own-price curve rises somewhere"
        if feature.startswith("media_"):
            assert (steps >= -1e-6).all(), f"{feature} curve falls somewhere"

    from omegaconf import OmegaConf

    cfg = OmegaConf.load(out / "config.yaml")
    assert cfg.data.source.n_brands == 2 and cfg.trainer.max_epochs == 30 and cfg.seed == 0


def test_checkpoint_reloads_and_reproduces_predictions(cli_runs) -> None:
    out, proc = finished(cli_runs, "run_a")
    assert proc.returncode == 0
    _, dm, module = load_run(out)
    saved = pd.read_csv(out / "oos_predictions.csv")
    test = dm.splits["test"]
    with torch.no_grad():
        pred = module.model(test["x"], test["media"], test["brand"], test["sku"])["log_gmv"].exp().numpy()
    np.testing.assert_allclose(saved["predicted"].to_numpy(), pred, rtol=1e-6)


def test_saved_model_can_be_validated_alone(cli_runs) -> None:
    """Evaluating a saved checkpoint with ``Trainer.validate`` (no fitting) reports the validation metrics."""
    import lightning as L

    out, proc = finished(cli_runs, "run_a")
    assert proc.returncode == 0
    _, dm, module = load_run(out)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    (result,) = trainer.validate(module, datamodule=dm, verbose=False)
    assert {"val/loss", "val/violation_monotone", "val/violation_concave"} <= set(result)
    assert result["val/violation_monotone"] == 0.0  # hard constraints


def test_same_config_and_seed_give_identical_results(cli_runs) -> None:
    (a, pa), (b, pb) = finished(cli_runs, "run_a"), finished(cli_runs, "run_b")
    assert pa.returncode == 0 and pb.returncode == 0
    ma = without_wall_clock(json.loads((a / "metrics.json").read_text()))
    mb = without_wall_clock(json.loads((b / "metrics.json").read_text()))
    assert ma == mb
    for name in ("elasticities.csv", "roi.csv", "predictions.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_seed_drives_shuffling_and_repeats_exactly(tmp_path) -> None:
    """Mini-batches (batch_size=32): the same seed repeats bit for bit, another seed shuffles differently.

    (At the default full batch the seed changes nothing: every component starts from fixed values.)
    """
    r2 = [train_in_process(tmp_path / f"run{i}", ["batch_size=32", f"seed={seed}"]) for i, seed in enumerate((0, 0, 1))]
    first, again, other = (without_wall_clock(json.loads((tmp_path / f"run{i}" / "metrics.json").read_text())) for i in range(3))
    assert first == again
    assert r2[0] != r2[2] and first != other


# ---------------------------------------------------------------------------------------------- MLflow
def test_mlflow_logger_records_params_metrics_and_artifacts(cli_runs) -> None:
    out, proc = finished(cli_runs, "mlflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    import mlflow

    store = out.parent / "mlflow_store"
    assert (store / "mlflow.db").is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    experiment = client.get_experiment_by_name("nam-mmm")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "synthetic-hill-joint-holdout"
    params = run.data.params  # the flattened config
    assert params["data.source.n_brands"] == "2" and params["seed"] == "0" and params["model.media_response"] == "hill"
    metrics = run.data.metrics
    local = json.loads((out / "metrics.json").read_text())
    assert metrics["test.r2"] == pytest.approx(local["test"]["r2"])
    assert "recovery.own_price_elasticity_mae" in metrics and "val/loss" in metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "roi.csv", "elasticities.csv", "model.ckpt", "config.yaml"} <= artifacts


# ---------------------------------------------------------------------------------------------- errors
def test_missing_csv_is_one_line_and_exit_code_2(cli_runs) -> None:
    _, proc = finished(cli_runs, "missing_csv")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "/nonexistent.csv" in lines[0] and "not found" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_config_error_is_one_line_and_exit_code_2(tmp_path, capsys) -> None:
    """A plan that cannot fit the calendar (38 test + 4 validation weeks of 40) is one line, exit code 2."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from helpers import compose_train

    cfg = compose_train([*TINY_RUN, "data.holdout.test_size=38"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as exit_info:
            one_line_errors(train)(cfg)
    finally:
        torch.set_num_threads(threads)
        HydraConfig.instance().cfg = None
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "training periods" in err[0]


def test_a_diverging_loss_stops_training_with_a_one_line_reason(tmp_path) -> None:
    from nam_mmm.errors import TrainingError

    with pytest.raises(TrainingError) as err:
        train_in_process(tmp_path, ["optimizer.lr=1000"])  # Adam steps of ~1000 blow the networks up within a few epochs
    text = str(err.value)
    assert "\n" not in text and text.startswith("training diverged at epoch")
    assert "not finite" in text and "optimizer.lr (now 1000)" in text
    assert not (tmp_path / "metrics.json").exists()  # no results written from a diverged model


# ---------------------------------------------------------------------------------------------- soft constraints
def test_soft_constraints_train_and_log_violation_rates(tmp_path) -> None:
    csv_dir = tmp_path / "csv"
    train_in_process(
        tmp_path,
        ["constraints=soft", "+logger.csv._target_=lightning.pytorch.loggers.CSVLogger", f"+logger.csv.save_dir={csv_dir}", "+logger.csv.name=soft"],
    )
    _, _, module = load_run(tmp_path)
    model = module.model
    components = {s.name: s.component for s in model.slots}
    assert components["price"] == "mlp" and components["discount"] == "mlp"  # no shape by construction
    assert [s.direction for s in model.slots if s.name == "price"] == [-1]  # ... but still checked

    (log_file,) = csv_dir.glob("soft/version_*/metrics.csv")
    log = pd.read_csv(log_file)
    for name in ("train/rate_monotone", "train/rate_concave", "train/rate_bounds", "val/violation_monotone", "val/violation_concave", "val/violation_bounds"):
        values = log[name].dropna()
        assert len(values) > 0, f"{name} never logged"
        assert values.between(0.0, 1.0).all(), name
    # an unconstrained start does violate the price direction; the penalty is what brings the rate down
    torch.manual_seed(0)
    fresh = type(model).from_dict(model.to_dict())  # same architecture, untrained weights
    start = float(shape_terms(fresh, LossConfig())["rate_monotone"])
    rates = log["train/rate_monotone"].dropna().to_numpy()
    assert start > 0 and rates[-1] < start

    terms = shape_terms(model, LossConfig())
    for key in ("rate_monotone", "rate_concave", "rate_bounds"):
        assert 0.0 <= float(terms[key]) <= 1.0


# ---------------------------------------------------------------------------------------------- model families
FAMILIES = {"hill": "hill", "beta_gamma": "beta_gamma", "exponential": "exponential", "monotone_nn": "concave_increasing"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_model_family_trains(family: str, tmp_path) -> None:
    r2 = train_in_process(tmp_path, [f"model={family}"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert math.isfinite(r2) and r2 == metrics["test"]["r2"]
    assert metrics["train"]["r2"] > 0.5 and metrics["test"]["r2"] > 0.3  # it learned something in 30 epochs
    _, _, module = load_run(tmp_path)
    media = module.model.slots[module.model.n_scalar :]
    assert [s.name for s in media] == SYNTHETIC_CHANNELS
    assert {s.component for s in media} == {FAMILIES[family]}
    roi = pd.read_csv(tmp_path / "roi.csv")
    assert roi["channel"].tolist() == SYNTHETIC_CHANNELS and np.isfinite(roi[["roi", "marginal_roi"]].to_numpy()).all()
    assert (roi["contribution_inr"] > 0).all()  # every family: spending on a channel adds GMV on average


# ---------------------------------------------------------------------------------------------- DT Mart
@requires_dtmart
def test_dtmart_beta_gamma_run(cli_runs) -> None:
    out, proc = finished(cli_runs, "dtmart")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert math.isfinite(json.loads((out / "metrics.json").read_text())["test"]["r2"])
    from omegaconf import OmegaConf

    # the 9 DT Mart channels, or the groups conf/data/dtmart.yaml merges them into (each channel exactly once)
    groups = OmegaConf.to_container(OmegaConf.load(out / "config.yaml").data).get("channel_groups")
    expected = list(groups) if groups else DTMART_CHANNELS
    if groups:
        assert sorted(c for members in groups.values() for c in members) == sorted(DTMART_CHANNELS)
    roi = pd.read_csv(out / "roi.csv")
    assert roi["channel"].tolist() == expected
    assert (roi["spend_inr"] > 0).all() and np.isfinite(roi["roi"]).all()
    el = pd.read_csv(out / "elasticities.csv")
    assert set(el.loc[el["level"] == "brand", "unit"]) >= {"camera", "gaming"}


def test_a_missing_required_setting_is_one_line(capsys) -> None:
    """conf/data/panel_csv.yaml leaves data.source.path as ??? : forgetting it is a one-line error, exit code 2."""
    from omegaconf import OmegaConf

    from nam_mmm.entry import one_line_errors

    cfg = OmegaConf.create({"data": {"source": {"path": "???"}}})

    @one_line_errors
    def read_path() -> str:
        return cfg.data.source.path

    with pytest.raises(SystemExit) as exit_info:
        read_path()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: config: data.source.path is required; give it on the command line, e.g. data.source.path=..."
