"""Sweeps as users run them: ``python train.py -m hparams_search=nam_optuna`` (Optuna, resumable) and a grid
multirun, each grouped under one MLflow parent run, and ``scripts/compare_runs.py`` over the store.

Every sweep here is the tiny synthetic panel with 2 walk-forward folds and 30 epochs per trial.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import REPO_ROOT

TINY_WALK_FORWARD = [
    "data.source.n_brands=2",
    "data.source.skus_per_brand=2",
    "data.source.n_periods=40",
    "data.walk_forward.initial_train=20",
    "data.walk_forward.test_size=6",
    "data.walk_forward.step=6",
    "data.walk_forward.val_size=4",
    "validation.splitter.max_folds=2",
    "trainer.max_epochs=30",
    "trainer.min_epochs=1",
    "log_pyfunc=false",
]


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)


def log(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr  # Hydra's log lines go to stdout


def compare_runs_script():
    """``scripts/compare_runs.py`` as a module (its ``main(argv)`` is what the command runs)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    try:
        import compare_runs
    finally:
        sys.path.pop(0)
    return compare_runs


def store_args(base: Path) -> list[str]:
    return [f"logger.mlflow.tracking_uri=sqlite:///{base}/mlflow.db", f"logger.mlflow.artifact_location={base}/artifacts"]


@pytest.fixture(scope="module")
def optuna_sweeps(tmp_path_factory) -> dict:
    """Two invocations of the same Optuna sweep (3 trials, then 1 more). Trial 0 is enqueued with a learning
    rate that makes the loss diverge; trial 1 with a sane one."""
    base = tmp_path_factory.mktemp("optuna")
    args = [
        "-m",
        "hparams_search=nam_optuna",
        *TINY_WALK_FORWARD,
        *store_args(base),
        f"hydra.sweeper.storage=sqlite:///{base}/optuna.db",
        "optimizer.lr=choice(0.01,0.03,1000.0)",  # the command line narrows the config's search space
        "hydra.sweeper.enqueue_trials=[{optimizer.lr:1000.0,model:hill,strategy:joint},{optimizer.lr:0.03}]",
    ]
    first = cli(*args, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={base}/sweep1")
    second = cli(*args, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={base}/sweep2")
    return {"base": base, "first": first, "second": second}


def study(base: Path):
    import optuna

    return optuna.load_study(study_name="nam-mmm-synthetic", storage=f"sqlite:///{base}/optuna.db")


def client(base: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{base}/mlflow.db")


def test_optuna_sweep_writes_a_study_that_a_second_invocation_resumes(optuna_sweeps) -> None:
    import optuna

    for name in ("first", "second"):
        proc = optuna_sweeps[name]
        assert proc.returncode == 0, proc.stderr[-3000:]
    s = study(optuna_sweeps["base"])
    assert len(s.trials) == 4  # 3 from the first invocation, 1 more from the second
    assert "0 earlier trial(s); running 3 more" in log(optuna_sweeps["first"])
    assert "3 earlier trial(s); running 1 more" in log(optuna_sweeps["second"])
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL) for t in s.trials)
    # the objective is the walk-forward pooled R² the trial's run wrote
    done = s.trials[1]
    assert done.state == optuna.trial.TrialState.COMPLETE and done.params["optimizer.lr"] == 0.03
    metrics = pd.read_json(Path(done.user_attrs["run_dir"]) / "metrics.json", typ="series")
    assert done.value == pytest.approx(metrics["walk_forward"]["pooled"]["r2"])
    # the full search space of conf/hparams_search/nam_optuna.yaml was sampled
    assert {"model", "strategy", "model.brand_hidden", "model.dropout", "loss.lambda_hierarchical", "data.features.adstock_decay"} <= set(done.params)
    results = (optuna_sweeps["base"] / "sweep2" / "optimization_results.yaml").read_text()
    assert "trials_total: 4" in results and "best_params:" in results


def test_a_diverging_trial_is_recorded_as_failed_and_the_sweep_goes_on(optuna_sweeps) -> None:
    import optuna

    s = study(optuna_sweeps["base"])
    failed = s.trials[0]
    assert failed.params["optimizer.lr"] == 1000.0
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("TrainingError: training diverged at epoch")
    assert "trial 0 failed: TrainingError" in log(optuna_sweeps["first"])
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in s.trials[1:])  # later trials still ran
    assert "Traceback" not in optuna_sweeps["first"].stderr


def test_each_sweep_is_an_mlflow_parent_run_with_its_trials_as_children(optuna_sweeps) -> None:
    c = client(optuna_sweeps["base"])
    exp = c.get_experiment_by_name("nam-mmm")
    parents = c.search_runs([exp.experiment_id], filter_string="tags.`nam_mmm.kind` = 'sweep'", order_by=["attributes.start_time ASC"])
    assert [p.info.status for p in parents] == ["FINISHED", "FINISHED"]
    first = parents[0]
    assert first.data.params["sweep.study_name"] == "nam-mmm-synthetic" and first.data.params["sweep.objective"] == "walk_forward.pooled.r2"
    children = c.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{first.info.run_id}'", order_by=["attributes.start_time ASC"])
    assert len(children) == 3  # one run per trial
    assert children[0].info.status == "FAILED" and "training diverged" in children[0].data.tags["failure"]
    finished = [r for r in children if r.info.status == "FINISHED"]
    best = max(r.data.metrics["walk_forward.pooled.r2"] for r in finished if "walk_forward.pooled.r2" in r.data.metrics)
    assert first.data.metrics["best.walk_forward.pooled.r2"] == pytest.approx(best)
    assert first.data.metrics["runs_failed"] == sum(r.info.status == "FAILED" for r in children) >= 1
    # a trial's run carries the flattened config, the sweep's overrides and its folds as nested runs
    trial = finished[0]
    assert trial.data.params["validation.name"] == "walk_forward" and "optimizer.lr=" in trial.data.tags["nam_mmm.overrides"]
    folds = c.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{trial.info.run_id}'")
    assert len(folds) == 2


def test_compare_runs_ranks_a_sweeps_trials(optuna_sweeps, capsys) -> None:
    compare_runs = compare_runs_script()
    base = optuna_sweeps["base"]
    first = client(base).search_runs(
        [client(base).get_experiment_by_name("nam-mmm").experiment_id], filter_string="tags.`nam_mmm.kind` = 'sweep'", order_by=["attributes.start_time ASC"]
    )[0]
    out = base / "compare.csv"
    table = compare_runs.main(["--tracking-uri", f"sqlite:///{base}/mlflow.db", "--sweep", first.info.run_id, "--out", str(out)])
    printed = capsys.readouterr().out
    assert "top 3 of 3 runs by walk_forward.pooled.r2 (maximize)" in printed
    saved = pd.read_csv(out)
    assert len(saved) == len(table) == 3
    scores = saved["walk_forward.pooled.r2"]
    assert scores.dropna().is_monotonic_decreasing and scores.notna().iloc[0]  # best first, failed runs last
    assert saved["status"].iloc[-1] == "FAILED" and "diverged" in saved["failure"].iloc[-1]
    assert "optimizer.lr" in saved.columns  # the swept parameters are columns

    latest = compare_runs.main(["--tracking-uri", f"sqlite:///{base}/mlflow.db", "--sweep", "latest", "-k", "5", "--out", str(out)])
    assert len(latest) == 1  # the second invocation ran one trial


def test_a_trial_far_behind_at_a_fold_is_pruned(tmp_path) -> None:
    """Trial 0 (lr 0.03) sets the bar at each of 3 folds; trial 1 (lr 0.0001: 30 epochs barely move it) falls
    below it at an early fold and stops there, before the last fold trains; its run is KILLED in MLflow."""
    import optuna

    proc = cli(
        "-m", "hparams_search=nam_optuna", *TINY_WALK_FORWARD, *store_args(tmp_path),
        f"hydra.sweeper.storage=sqlite:///{tmp_path}/optuna.db", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
        "optimizer.lr=choice(0.03,0.0001)", "model=hill", "strategy=joint",
        "hydra.sweeper.enqueue_trials=[{optimizer.lr:0.03},{optimizer.lr:0.0001}]", f"hydra.sweep.dir={tmp_path}/sweep",
        "validation.splitter.max_folds=3",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = optuna.load_study(study_name="nam-mmm-synthetic", storage=f"sqlite:///{tmp_path}/optuna.db")
    kept, pruned = s.trials
    assert kept.state == optuna.trial.TrialState.COMPLETE and sorted(kept.intermediate_values) == [0, 1, 2]  # one report per fold
    assert pruned.state == optuna.trial.TrialState.PRUNED
    last = max(pruned.intermediate_values)
    assert last < 2 and sorted(pruned.intermediate_values) == list(range(last + 1))
    assert pruned.intermediate_values[last] < kept.intermediate_values[last]  # below the bar where it stopped
    assert pruned.user_attrs["prune_reason"].startswith(f"pruned after fold {last}: fold r2")
    assert not (Path(pruned.user_attrs["run_dir"]) / "fold_2").exists()  # the last fold never trained
    c = client(tmp_path)
    runs = c.search_runs([c.get_experiment_by_name("nam-mmm").experiment_id], filter_string="tags.pruned != ''")
    assert [r.info.status for r in runs] == ["KILLED"]


def test_compare_runs_on_a_missing_store_is_one_line_and_creates_nothing(tmp_path, capsys) -> None:
    compare_runs = compare_runs_script()
    store = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(SystemExit) as exit_info:
        compare_runs.main(["--tracking-uri", f"sqlite:///{store}", "--out", str(tmp_path / "c.csv")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no MLflow store at {store} (train something first, or pass --tracking-uri)"]
    assert not store.exists() and not (tmp_path / "c.csv").exists()


def test_grid_multirun_over_model_and_strategy(tmp_path) -> None:
    tiny_holdout = [o for o in TINY_WALK_FORWARD if not o.startswith(("data.walk_forward", "validation."))]
    proc = cli("-m", "model=hill,beta_gamma", "strategy=joint,hybrid", *tiny_holdout, "data.holdout.test_size=6", "data.holdout.val_size=4", *store_args(tmp_path), f"hydra.sweep.dir={tmp_path}/grid")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "grid").iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    c = client(tmp_path)
    exp = c.get_experiment_by_name("nam-mmm")
    (parent,) = c.search_runs([exp.experiment_id], filter_string="tags.`nam_mmm.kind` = 'sweep'")
    children = c.search_runs([exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    combos = {(r.data.params["model.name"], r.data.params["strategy.name"]) for r in children}
    assert combos == {("hill", "joint"), ("hill", "hybrid"), ("beta_gamma", "joint"), ("beta_gamma", "hybrid")}
    assert parent.info.status == "FINISHED" and parent.data.metrics["runs_finished"] == 4
    assert parent.data.tags["best_run_id"] in {r.info.run_id for r in children}
