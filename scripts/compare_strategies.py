"""Compare the optimization strategies (seed §6.6.5) under the same walk-forward, with measured numbers.

    python scripts/compare_strategies.py                     # synthetic default + DT Mart → experiments/bench/strategies.md
    python scripts/compare_strategies.py --data synthetic    # one data set
    python scripts/compare_strategies.py --synthetic-folds 2 --synthetic-epochs 600

Every run is a real ``train.py`` run (subprocess, ``logger=none`` plus a CSV log of every epoch). Reported per
data set and strategy: wall time of the whole walk-forward inside ``train.py`` (imports excluded), epochs until the training loss first reaches the
joint strategy's final training loss (mean over folds; "—" if never), pooled out-of-sample R² and MAPE,
constraint-violation rates of the soft-constraint variant (share of curve-grid steps going the wrong way,
at the end of training) and the same rates measured in the hard variant, and on synthetic data the recovery of the
generator's truth (own-price elasticity MAE, ROI rank correlation with the true ROI). What the report says
about the setup (panel size, folds, model, seed, epochs) is read from the runs' own config and folds files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
REUSE = False  # --reuse: read finished runs instead of training again
STRATEGIES = ["joint", "coordinate", "block", "hybrid"]


def run(data: str, strategy: str, constraints: str, out: Path, extra: list[str]) -> dict:
    cmd = [
        sys.executable, str(ROOT / "train.py"), f"data={data}", f"strategy={strategy}", f"constraints={constraints}",
        "validation=walk_forward", "logger=none", "optimizer.log_every_n_epochs=1",
        "+logger.csv._target_=lightning.pytorch.loggers.CSVLogger", f"+logger.csv.save_dir={out / 'csv'}", "+logger.csv.name=log",
        f"hydra.run.dir={out}", *extra,
    ]
    if not (REUSE and (out / "metrics.json").is_file()):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    logs = [pd.read_csv(p) for p in sorted((out / "csv" / "log").glob("version_*/metrics.csv"))]
    logs = [log for log in logs if "train/loss" in log]  # one per fold (the parent run's log holds the summary)
    return {
        "wall": metrics["wall_seconds"], "metrics": metrics, "logs": logs,
        "config": OmegaConf.load(out / "config.yaml"), "folds": pd.read_csv(out / "folds.csv"),
    }


def train_losses(log: pd.DataFrame) -> pd.Series:
    t = log.dropna(subset=["train/loss"])
    return t.set_index("epoch")["train/loss"]


def epochs_to(target: float, log: pd.DataFrame) -> float:
    losses = train_losses(log)
    hit = losses[losses <= target]
    return float(hit.index[0] + 1) if len(hit) else float("nan")


def last(log: pd.DataFrame, column: str) -> float:
    values = log[column].dropna() if column in log else pd.Series(dtype=float)
    return float(values.iloc[-1]) if len(values) else float("nan")


SHAPE_VIOLATIONS = ("val/violation_monotone", "val/violation_concave")  # guaranteed by construction in hard mode


def max_seen(values) -> float:
    """Largest of the values that were logged (NaN when none was)."""
    seen = [v for v in values if v == v]
    return max(seen) if seen else float("nan")


def mean_last(logs: list[pd.DataFrame], column: str) -> float:
    return sum(last(lg, column) for lg in logs) / len(logs)


def setup(runs: list[dict]) -> str:
    """The setup shared by every run of a data set, from the runs' resolved configs and folds files; a
    setting that differs between the runs is reported per strategy rather than as common."""

    def shared(key: str) -> str:
        values = [str(OmegaConf.select(r["config"], key)) for r in runs]
        return values[0] if len(set(values)) == 1 else "differs: " + ", ".join(values)

    cfg, folds = runs[0]["config"], runs[0]["folds"]
    source = cfg.data.get("source") or {}
    if all(k in source for k in ("n_brands", "skus_per_brand", "n_periods")):
        panel = f"{source.n_brands} brands × {source.skus_per_brand} SKUs × {source.n_periods} periods ({source.get('freq', '?')}), "
    else:
        panel = ""
    n_folds = [int(r["metrics"]["walk_forward"]["folds"]) for r in runs]
    first, last_ = str(folds["test"].iloc[0]), str(folds["test"].iloc[-1])
    test_span = f"{first.split(' (')[0].split(' … ')[0]} to {last_.split(' (')[0].split(' … ')[-1]}"
    return (
        f"{cfg.data.name}: {panel}{n_folds[0] if len(set(n_folds)) == 1 else n_folds} walk-forward folds (test periods {test_span}); "
        f"model `{shared('model.name')}`, seed {shared('seed')}, max {shared('trainer.max_epochs')} epochs (trainer.max_epochs)."
    )


def compare(data: str, extra: list[str], workdir: Path) -> tuple[pd.DataFrame, str]:
    results = {s: run(data, s, "hard", workdir / data / s, extra) for s in STRATEGIES}
    soft = {s: run(data, s, "soft", workdir / data / f"{s}_soft", extra) for s in STRATEGIES}
    joint_final = [train_losses(log).iloc[-1] for log in results["joint"]["logs"]]
    rows = []
    for s in STRATEGIES:
        r, m = results[s], results[s]["metrics"]
        epochs = [epochs_to(target, log) for target, log in zip(joint_final, r["logs"], strict=True)]
        reached = [e for e in epochs if e == e]
        soft_logs = soft[s]["logs"]
        rec = m.get("recovery", {})
        rows.append(
            {
                "strategy": s,
                "wall_s": round(r["wall"], 1),
                "epochs_run": int(sum(int(log["epoch"].max()) + 1 for log in r["logs"]) / len(r["logs"])),
                "epochs_to_joint_loss": f"{sum(reached) / len(reached):.0f} ({len(reached)}/{len(epochs)} folds)" if reached else "—",
                "oos_r2": round(m["test"]["r2"], 3),
                "oos_mape_%": round(m["test"]["mape"], 2),
                "fold_r2": f"{m['walk_forward']['fold_r2_mean']:.3f} ± {m['walk_forward']['fold_r2_std']:.3f}",
                "acceptance": "pass" if m.get("acceptance_passed") else "fail",
                "soft_oos_r2": round(soft[s]["metrics"]["test"]["r2"], 3),
                "soft_violation_monotone": round(mean_last(soft_logs, "val/violation_monotone"), 4),
                "soft_violation_concave": round(mean_last(soft_logs, "val/violation_concave"), 4),
                "soft_violation_bounds": round(mean_last(soft_logs, "val/violation_bounds"), 4),
                "hard_violation_shape_max": round(max_seen(last(lg, c) for lg in r["logs"] for c in SHAPE_VIOLATIONS), 4),
                "hard_violation_bounds": round(mean_last(r["logs"], "val/violation_bounds"), 4),
                "own_price_mae": round(rec["own_price_elasticity_mae"], 3) if "own_price_elasticity_mae" in rec else "—",
                "roi_rank_corr": round(rec["roi_rank_corr"], 2) if "roi_rank_corr" in rec else "—",
            }
        )
    return pd.DataFrame(rows), setup([*results.values(), *soft.values()])


def markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["synthetic", "dtmart"])
    ap.add_argument("--synthetic-folds", type=int, default=2, help="walk-forward folds kept on the synthetic panel (the last ones)")
    ap.add_argument("--synthetic-epochs", type=int, default=600)
    ap.add_argument("--workdir", default=str(ROOT / "experiments" / "strategy_runs"))
    ap.add_argument("--out", default=str(ROOT / "experiments" / "bench" / "strategies.md"))
    ap.add_argument("--reuse", action="store_true", help="reuse finished runs in --workdir (re-tabulate only)")
    args = ap.parse_args()
    global REUSE
    REUSE = args.reuse
    extras = {
        "synthetic": [f"validation.splitter.max_folds={args.synthetic_folds}", f"data.max_epochs={args.synthetic_epochs}"],
        "dtmart": [],
    }
    sections = [
        "# Optimization strategies compared",
        "",
        f"`python scripts/compare_strategies.py` — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores (os.cpu_count), "
        "the runs one after another.",
        "`wall_s`: the walk-forward inside train.py (imports excluded). `epochs_to_joint_loss`: first epoch at which the",
        "training loss reaches the joint strategy's final training loss (mean over the folds that reach it). `soft_*`: the same",
        "strategy with `constraints=soft` (unconstrained networks, penalties only): out-of-sample R² and the share of curve-grid",
        "steps that violate monotonicity / concavity / elasticity bounds at the end of training (mean over folds).",
        "`hard_violation_shape_max`: the largest monotonicity or concavity share in any fold of the hard-constraint run;",
        "`hard_violation_bounds`: its elasticity-bounds share (mean over folds; bounds are a penalty in both modes).",
        "",
    ]
    for data in args.data:
        table, note = compare(data, extras.get(data, []), Path(args.workdir))
        sections += [f"## {data}", "", note, "", markdown(table), ""]
        print(table.to_string(index=False), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sections) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
