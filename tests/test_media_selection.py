"""``loss.lambda_media: cv``: the rule, the inner split and the wiring into a run."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from helpers import train_in_process
from nam_mmm.data.folds.splitters import Fold
from nam_mmm.errors import ConfigError
from nam_mmm.training.loss import LossConfig
from nam_mmm.training.selection import admissible, choose, inner_fold, log_mse


def test_the_largest_penalty_within_the_tolerance_of_the_best_wins():
    assert choose([0.0, 0.1, 0.3], [1.00, 1.02, 1.06], 0.05)[0] == 0.1  # 0.3 costs 6 % > 5 %
    assert choose([0.0, 0.1, 0.3], [1.00, 1.02, 1.04], 0.05)[0] == 0.3  # the forecast cannot tell them apart
    assert choose([0.0, 0.1, 0.3], [1.00, 1.30, 1.60], 0.05)[0] == 0.0  # strong media: shrinking costs accuracy
    assert choose([0.0, 0.1, 0.3], [1.20, 1.00, 1.30], 0.0)[0] == 0.1  # tolerance 0: the best alone
    assert choose([0.0, 0.1, 0.3], [math.nan, 1.0, math.nan], 0.05)[0] == 0.1  # a failed fit never wins
    chosen, reason = choose([0.0, 0.1], [math.nan, math.nan], 0.05)
    assert chosen == 0.0 and "no grid value" in reason
    # the penalties the forecast cannot tell apart (the intervals' penalty allowance reaches their estimates)
    assert admissible([0.0, 0.1, 0.3], [1.00, 1.02, 1.06], 0.05) == [0.0, 0.1]
    assert admissible([0.0, 0.1, 0.3], [math.nan, 1.0, 1.01], 0.05) == [0.1, 0.3]
    assert admissible([0.0, 0.1], [math.nan, math.nan], 0.05) == []


def test_the_inner_split_holds_out_the_windows_last_periods_and_refuses_a_short_window():
    periods = pd.date_range("2024-01-01", periods=20, freq="W-MON")
    fold = Fold(0, periods[:12], periods[:0], periods[12:16])
    inner = inner_fold(fold, len(fold.test))
    assert list(inner.train) == list(periods[:8]) and list(inner.test) == list(periods[8:12]) and len(inner.val) == 0
    assert inner.test[-1] < fold.test[0]  # nothing of the fold's test periods is seen
    assert inner_fold(Fold(0, periods[:11], periods[:0], periods[11:15]), 4) is None  # 7 left to train on < 2 × 4


def test_log_mse_uses_fitted_rows_with_positive_gmv_only():
    frame = pd.DataFrame({"actual": [100.0, 100.0, 0.0, 50.0], "predicted": [100.0 * math.e, 5.0, 5.0, 5.0], "fit_weight": [1, 0, 1, 1]})
    assert log_mse(frame) == pytest.approx((1.0 + math.log(0.1) ** 2) / 2)
    assert math.isnan(log_mse(frame.assign(predicted=[100.0, 5.0, 5.0, math.inf])))  # a diverged fit scores nothing


def test_lambda_media_accepts_cv_and_rejects_other_words_and_bad_grids():
    assert LossConfig(lambda_media="cv").lambda_media == "cv"
    for bad in ({"lambda_media": "auto"}, {"lambda_media_grid": []}, {"lambda_media_grid": [0.0, -0.1]}, {"lambda_media_tolerance": -0.01}):
        with pytest.raises(ConfigError, match="lambda_media"):
            LossConfig(**bad)


def test_a_cv_run_records_its_choice_and_every_fold_trains_with_it(tmp_path, capsys):
    overrides = ["validation=walk_forward", "data.walk_forward.initial_train=24", "data.walk_forward.test_size=4",
                 "data.walk_forward.step=4", "data.walk_forward.val_size=0", "trainer.max_epochs=8",
                 "loss.lambda_media=cv", "loss.lambda_media_grid=[0.0,0.5]", "intervals.enabled=true", "intervals.resamples=2"]
    train_in_process(tmp_path, overrides)
    choice = json.loads((tmp_path / "metrics.json").read_text())["lambda_media_selection"]
    assert choice["chosen"] in (0.0, 0.5) and choice["grid"] == [0.0, 0.5]
    assert all(e is not None and e > 0 for e in choice["inner_mse_log"])
    assert choice["chosen"] in choice["admissible"] and set(choice["admissible"]) <= {0.0, 0.5} and "inner_fits" not in choice
    assert choice["inner_test"].endswith("(4)") and choice["inner_train"].endswith("(20)")  # the first window, split
    for fold in sorted(tmp_path.glob("fold_*")):
        assert json.loads((fold / "metrics.json").read_text())["lambda_media"] == choice["chosen"]
    assert f"loss.lambda_media=cv chose {choice['chosen']:g}" in capsys.readouterr().out
    # the bootstrap intervals say whether the other admissible penalty widened them
    allowance = json.loads((tmp_path / "intervals.json").read_text())["penalty_allowance"]
    assert allowance.startswith("none") if choice["admissible"] == [choice["chosen"]] else "lambda_media=" in allowance
