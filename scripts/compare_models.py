"""HR-NAM against the baselines on exactly its walk-forward folds and features.

    python scripts/compare_models.py data=dtmart                 # writes experiments/bench/models_dtmart.md (+ .png)
    python scripts/compare_models.py data=synthetic model=beta_gamma --out /tmp/models.md

Runs ``python train.py validation=walk_forward logger=none <overrides>`` as a fresh process into a scratch
run folder, reads its resolved ``config.yaml`` and ``oos_predictions.csv``, rebuilds the same feature table
and folds from that config, fits every baseline of :mod:`nam_mmm.evaluation.baselines` per fold (periods
before the test periods only) and scores all models on the same rows. Everything in the report is measured
in this run: the HR-NAM's fit time is the wall time of its process (imports included), a baseline's is its
fitting time over all folds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_hrnam(overrides: list[str], run_dir: Path) -> tuple[float, str]:
    cmd = [sys.executable, str(ROOT / "train.py"), "validation=walk_forward", "logger=none", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: train.py failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
    return seconds, " ".join(["python train.py", "validation=walk_forward", "logger=none", *overrides])


def chart(table, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ["#0072B2" if m == "hr_nam" else "#999999" for m in table["model"]]  # colour-blind-safe blue vs grey
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(table) + 1.8), sharey=True)
    for ax, col, label in ((axes[0], "mape", "pooled MAPE, % (lower is better)"), (axes[1], "r2", "pooled R² (higher is better)")):
        values = table[col].clip(lower=0 if col == "r2" else None, upper=100 if col == "mape" else None)
        ax.barh(table["model"], values, color=colors)
        for y, v in enumerate(table[col]):
            ax.text(min(values.iloc[y], values.max()), y, f" {v:.3g}", va="center", fontsize=8)
        ax.set_xlabel(label)
        ax.invert_yaxis() if ax is axes[0] else None
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for train.py, e.g. data=dtmart")
    parser.add_argument("--out", type=Path, default=None, help="report path (default experiments/bench/models_<data>.md)")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from omegaconf import OmegaConf

    from nam_mmm.entry import load_table, make_splitter
    from nam_mmm.evaluation.baselines import run_baselines
    from nam_mmm.evaluation.comparison import comparison_table, fold_mape_table

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        hr_seconds, command = run_hrnam(args.overrides, run_dir)
        cfg = OmegaConf.load(run_dir / "config.yaml")
        hr = pd.read_csv(run_dir / "oos_predictions.csv", parse_dates=["date"]).rename(columns={"date": "period"})
    table = load_table(cfg.data)
    folds = make_splitter(cfg.validation).split(table.panel.periods)
    base, seconds, skipped = run_baselines(table, folds)
    preds = pd.concat([hr.assign(model="hr_nam")[base.columns], base], ignore_index=True)
    keys = ["fold", "period", "sku"]
    hr["period"] = hr["period"].astype(base["period"].dtype)  # the CSV reads back at another datetime resolution
    hr_rows = hr[keys].sort_values(keys).reset_index(drop=True)
    for name, g in base.groupby("model"):  # the same rows, or the comparison means nothing
        if not g[keys].sort_values(keys).reset_index(drop=True).equals(hr_rows):
            sys.exit(f"error: baseline {name} scored other rows than the HR-NAM run")
    comp = comparison_table(preds, {"hr_nam": hr_seconds, **seconds})
    data_name = str(cfg.data.name)
    out = args.out or ROOT / "experiments" / "bench" / f"models_{data_name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    chart(comp, png, f"{data_name}: {len(folds)} walk-forward folds, {int(comp['n'].iloc[0])} out-of-sample rows")
    fmt = comp.copy()
    for col in ("r2", "r2_within_sku_log", "skill_vs_naive"):
        fmt[col] = fmt[col].map(lambda v: f"{v:.3f}" if np.isfinite(v) and abs(v) < 1e6 else ("< -1e6" if np.isfinite(v) else "nan"))
    for col in ("mape", "wmape", "worst_fold_mape"):
        fmt[col] = fmt[col].map(lambda v: f"{v:.2f}" if abs(v) < 1e6 else "> 1e6")
    fmt["fit_seconds"] = fmt["fit_seconds"].map(lambda v: f"{v:.2f}")
    fold_tab = fold_mape_table(preds)
    lines = [
        f"# Models on `{data_name}`: HR-NAM and baselines on the same walk-forward folds",
        "",
        f"Command: `python scripts/compare_models.py {' '.join(args.overrides)}` (HR-NAM: `{command}`).",
        f"Folds: {len(folds)}; test periods {', '.join(str(f.test[0].date()) for f in folds)}. Baselines are fitted per fold on the",
        "periods before the test periods, in the HR-NAM's feature space (its fold scaler's features, fixed-decay adstock).",
        "MAPE / wMAPE in %, R² on rupees, within-SKU R² on log GMV pooled over folds, skill = 1 − SSE / SSE(naive mean),",
        "fit seconds: HR-NAM = wall time of its `train.py` process (imports included), baselines = fitting time over all folds.",
        "",
        fmt.drop(columns=["n"]).to_markdown(index=False),
        "",
        "MAPE per fold:",
        "",
        fold_tab.map(lambda v: f"{v:.2f}" if abs(v) < 1e6 else "> 1e6").to_markdown(),
        "",
        f"![models]({png.name})",
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())]
    out.write_text("\n".join(lines) + "\n")
    print(fmt.drop(columns=["n"]).to_string(index=False))
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(f"\nwrote {out} and {png.name}")


if __name__ == "__main__":
    main()
