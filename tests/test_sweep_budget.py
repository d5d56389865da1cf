"""The Optuna sweeper's failure budget: a sweep whose trials keep failing for the same reason (a code bug, a
config that cannot build) stops with that reason as a one-line error and a non-zero exit, instead of
recording every trial as FAIL and exiting 0. Every sweep here fails before any training starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import REPO_ROOT
from hydra_plugins.nam_optuna_sweeper.sweeper import NamOptunaSweeper

TINY = [
    "data.source.n_brands=2", "data.source.skus_per_brand=2", "data.source.n_periods=40",
    "data.walk_forward.initial_train=20", "data.walk_forward.test_size=6", "data.walk_forward.step=6", "data.walk_forward.val_size=4",
    "validation.splitter.max_folds=2", "trainer.max_epochs=30", "trainer.min_epochs=1", "logger=none", "log_pyfunc=false",
]
BAD_HIER_MODE = "ConfigError: hier_mode must be weighted or deviation, got 'bogus'"


def sweep(tmp_path: Path, n_trials: int, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    cmd = [
        sys.executable, "train.py", "-m", "hparams_search=nam_optuna", *TINY,
        f"hydra.sweeper.storage=sqlite:///{tmp_path}/optuna.db", f"hydra.sweep.dir={tmp_path}/sweep",
        f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.enqueue_trials=[]", *args,
    ]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)


def trials(tmp_path: Path):
    import optuna

    return optuna.load_study(study_name="nam-mmm-synthetic", storage=f"sqlite:///{tmp_path}/optuna.db").trials


def test_a_sweep_whose_every_run_raises_the_same_error_stops_with_it(tmp_path) -> None:
    import optuna

    proc = sweep(tmp_path, 6, "model.hier_mode=bogus")  # every trial's run raises the same ConfigError
    assert proc.returncode == 2
    expected = f"sweep stopped: 3 of 3 finished trials failed with the same reason (more than max_failure_share=0.5): {BAD_HIER_MODE}"
    assert [line for line in proc.stderr.splitlines() if "sweep stopped" in line] == [f"error: {expected}"]
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    done = trials(tmp_path)
    assert len(done) == 3  # stopped once the budget applied, not after all 6
    assert all(t.state == optuna.trial.TrialState.FAIL and t.user_attrs["fail_reason"] == BAD_HIER_MODE for t in done)
    results = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert results.stopped == expected and results.trials_by_state.FAIL == 3


def test_trials_whose_config_cannot_be_composed_count_against_the_budget(tmp_path) -> None:
    proc = sweep(tmp_path, 5, "model=choice(no_such_model)", "hydra.sweeper.min_trials_for_budget=2", "hydra.sweeper.max_failure_share=0.9")
    assert proc.returncode == 2
    (line,) = [line for line in proc.stderr.splitlines() if "sweep stopped" in line]
    assert line.startswith("error: sweep stopped: 2 of 2 finished trials failed with the same reason (more than max_failure_share=0.9): config: ")
    assert "no_such_model" in line
    assert len(trials(tmp_path)) == 2


def test_without_a_budget_an_all_failing_sweep_runs_every_trial(tmp_path) -> None:
    proc = sweep(tmp_path, 4, "model=choice(no_such_model)", "hydra.sweeper.max_failure_share=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "sweep stopped" not in proc.stderr
    assert len(trials(tmp_path)) == 4
    assert "stopped" not in OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")


def budget(share: float | None = 0.5, min_trials: int = 3) -> NamOptunaSweeper:
    return NamOptunaSweeper("s", None, "maximize", 10, max_failure_share=share, min_trials_for_budget=min_trials)


@pytest.mark.parametrize(
    "outcomes, stops",
    [
        (["bug", "bug"], False),  # fewer finished trials than min_trials_for_budget
        (["bug", "bug", "bug"], True),
        (["bug", "bug", None], True),  # 2 of 3 > 0.5
        (["bug", None, None, "bug"], False),  # 2 of 4 is not more than half
        (["bug", "other", "third", None], False),  # as many failures, but no one reason dominates
        ([None, None, None, None], False),
    ],
)
def test_the_budget_counts_failures_by_reason(outcomes: list, stops: bool) -> None:
    message = budget()._over_budget(outcomes)
    assert (message is not None) == stops
    if stops:
        count = outcomes.count("bug")
        assert message == f"sweep stopped: {count} of {len(outcomes)} finished trials failed with the same reason (more than max_failure_share=0.5): bug"


def test_the_budget_can_be_switched_off_and_is_validated() -> None:
    assert budget(share=None)._over_budget(["bug"] * 10) is None
    assert budget(share=1.0)._over_budget(["bug"] * 10) is None  # a share cannot be more than all
    assert budget(share=0.0, min_trials=1)._over_budget(["bug"]) is not None
    with pytest.raises(ValueError, match="max_failure_share must be in"):
        budget(share=1.5)
    with pytest.raises(ValueError, match="min_trials_for_budget must be at least 1"):
        budget(min_trials=0)
