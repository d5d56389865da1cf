"""Recovery of the synthetic generator's truth by the default run (4 brands × 5 SKUs × 104 weeks, holdout).

The out-of-sample evidence that the model finds real effects, not just a good fit: own-price elasticities
close to the truth, channels ranked by ROI like the truth, and test accuracy near the noise floor.
Slow (a full default training run, ~30 s): ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO_ROOT

pytestmark = pytest.mark.slow


def test_default_synthetic_run_recovers_the_truth(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, "train.py", "logger=none", f"hydra.run.dir={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rec = metrics["recovery"]
    print("recovery:", json.dumps({k: round(v, 4) for k, v in rec.items()}))
    assert rec["own_price_elasticity_mae"] <= 0.10, rec
    assert rec["roi_rank_corr"] >= 0.6, rec
    assert rec["gap_r2"] <= 0.03, rec  # test R² within 0.03 of the noiseless truth's
