"""Recovery suite: HR-NAM and the ridge baselines against known truth, beyond the project's own generator.

    python scripts/bench_recovery.py                  # 7 scenarios × 3 seeds + every panel in ../shared/recovery/
    python scripts/bench_recovery.py --quick          # 3 scenarios × 1 seed, 300 epochs, shared panels ≤ 2,000 rows
    python scripts/bench_recovery.py --out /tmp/recovery.md --scenarios strong_separated --seeds 1
    python scripts/bench_recovery.py --out /tmp/events.md data.features.fourier_order=3   # extra train.py overrides

For every panel, ``python train.py validation=walk_forward logger=none <data overrides>`` runs as a fresh process
into a scratch run folder (walk-forward: four test blocks at the end of the calendar, each fold model trained only on
the periods before its test block; its ``roi.csv`` / ``contributions.csv`` / ``elasticities.csv`` are the fold
ensemble on every period, the same rows the truth sums over). The script reads the run's ``config.yaml`` to rebuild
the same feature table and folds, fits the baselines per fold (``naive_mean``, ``ridge``, ``loglog_ridge``; ROI,
contributions and elasticities of the two ridges from their coefficients, :mod:`nam_mmm.evaluation.baseline_attribution`)
and scores every model against the truth:

* generator scenarios (:data:`nam_mmm.evaluation.recovery_suite.SCENARIOS`): ROI MAPE and Spearman rank correlation,
  contribution-share MAE (pp), predicted / true total media contribution, own- and cross-price elasticity MAE,
  out-of-sample MAPE and its gap to the noise floor (the noiseless truth's MAPE on the same rows);
* ``../shared/recovery/*`` (pymc-labs mmm-param-recovery panels; skipped with a message when absent): the same
  attribution metrics against ``truth.json`` (sales units) and the out-of-sample MAPE; these panels have no price
  (no elasticities) and no noiseless mean (no noise floor).

Everything written is measured in this run, with the command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nam_mmm.evaluation.recovery_suite import MODELS  # noqa: E402

QUICK_SCENARIOS = ["strong_separated", "festival_national", "monthly_correlated_log"]
QUICK_MAX_ROWS = 2_000  # --quick: shared panels up to this many rows
METRICS = [  # key, column label, format
    ("roi_mape", "ROI MAPE %", "{:.1f}"),
    ("roi_rank_corr", "ROI Spearman", "{:.2f}"),
    ("contribution_share_mae_pp", "share MAE pp", "{:.1f}"),
    ("media_total_ratio", "media pred/true", "{:.2f}"),
    ("own_price_elasticity_mae", "own-price MAE", "{:.3f}"),
    ("cross_price_elasticity_mae", "cross-price MAE", "{:.3f}"),
    ("mape", "OOS MAPE %", "{:.2f}"),
    ("mape_gap_pp", "gap to floor pp", "{:.2f}"),
    ("worst_fold_vs_naive", "worst fold / naive", "{:.2f}"),
]
TOL = 1e-9  # threshold checks: a Spearman of 4 channels is 0.8 exactly, computed as 0.7999999999999999


def meets(value: float, op: str, threshold: float) -> bool:
    """``value op threshold`` up to rounding (nan never meets)."""
    if value is None or not np.isfinite(value):
        return False
    return value >= threshold - TOL if op == ">=" else value <= threshold + TOL


TARGETS = {  # issue 10, Done-when (recovery suite, mean over scenarios and seeds)
    "roi_rank_corr": (">=", 0.6),
    "own_price_elasticity_mae": ("<=", 0.10),
    "contribution_share_mae_pp": ("<=", 8.0),
    "mape_gap_pp": ("<=", 1.0),
}


def run_train(overrides: list[str], run_dir: Path, log_dir: Path | None) -> tuple[float, str | None]:
    """One HR-NAM run as a fresh ``train.py`` process; (wall seconds, error line or None)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "validation=walk_forward", "logger=none", *overrides, f"hydra.run.dir={run_dir}"]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if log_dir is not None:
        (log_dir / f"{run_dir.name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return seconds, f"train.py exit {proc.returncode}: {lines[-1] if lines else ''}"
    return seconds, None


def code_version() -> str:
    """The commit the measured code is at, and whether the code it runs differs from that commit."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "nam_mmm", "conf", "train.py", "scripts"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    changed = [line[3:] for line in dirty.splitlines()]
    return f"code: commit {head}" + (f", with uncommitted changes in {', '.join(changed)}" if changed else " (clean)")


class Job(NamedTuple):
    """One HR-NAM run of the suite: what to train and what to score it with."""

    kind: str  # "scenario" | "shared"
    tag: str  # label in the console and the failures list
    run_dir: Path
    overrides: list[str]
    context: Any  # (scenario, seed) or (folder, truth, n_rows)
    size: int  # rows: larger runs start first


def _plan_text() -> str:
    """The fold plan the runs used, in words (from ``recovery_suite.fold_plan``, as the runs got it)."""
    from nam_mmm.evaluation.recovery_suite import fold_plan

    parts = []
    for label, n, freq, unit in (("weekly", 104, "W", "week"), ("monthly", 48, "MS", "month")):
        plan = fold_plan(n, freq)
        val = plan["val_size"]
        slice_text = f"{val}-{unit} early-stopping slice" if val else "no early-stopping slice: every fold trains to max epochs"
        parts.append(f"{label} {plan['test_size']} {unit}s, {slice_text}")
    return "; ".join(parts)


def fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or not np.isfinite(value) else spec.format(value)


def metric_table(frame: pd.DataFrame, label: str) -> str:
    cols = [(k, name, spec) for k, name, spec in METRICS if k in frame and frame[k].notna().any()]
    rows = []
    for _, r in frame.iterrows():
        rows.append({label: r[label], "model": r["model"], **{name: fmt(r.get(k), spec) for k, name, spec in cols}})
    return pd.DataFrame(rows).to_markdown(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every train.py run, e.g. data.features.fourier_order=3")
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK_SCENARIOS)} scenarios × 1 seed, 300 epochs, shared panels ≤ {QUICK_MAX_ROWS} rows")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "bench" / "recovery.md", help="report path")
    parser.add_argument("--scenarios", nargs="*", default=None, help="scenario names (default: all, or the quick ones)")
    parser.add_argument("--seeds", nargs="*", type=int, default=None, help="generator seeds (default 1 2 3; quick: 1)")
    parser.add_argument("--epochs", type=int, default=None, help="trainer.max_epochs (default: the data config's; quick: 300)")
    parser.add_argument("--shared-dir", type=Path, default=None, help="folder of shared panels (default ../shared/recovery)")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared panels")
    parser.add_argument("--jobs", type=int, default=1, help="train.py processes at once (each uses one thread; wall times then include sharing the CPU)")
    parser.add_argument("--logs", type=Path, default=None, help="keep each train.py console log in this folder")
    args = parser.parse_args()

    from nam_mmm.evaluation.recovery_suite import (
        DESCRIPTIONS,
        SCENARIOS,
        SHARED_DIR,
        fold_plan,
        generate_scenario,
        scenario_config,
        score_run,
        shared_panels,
        shared_truth,
    )

    scenarios = args.scenarios or (QUICK_SCENARIOS if args.quick else list(SCENARIOS))
    seeds = args.seeds or ([1] if args.quick else [1, 2, 3])
    epochs = args.epochs or (300 if args.quick else None)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        sys.exit(f"error: unknown scenario(s) {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    extra = ([f"trainer.max_epochs={epochs}"] if epochs else []) + list(args.overrides)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    records, failures, notes = [], [], []

    with tempfile.TemporaryDirectory() as tmp:
        jobs: list[Job] = []
        for scenario in scenarios:
            for seed in seeds:
                cfg = scenario_config(scenario, seed)
                plan = fold_plan(cfg.n_periods, cfg.freq)
                overrides = ["data=recovery", f"data.source.scenario={scenario}", f"data.source.seed={seed}", *[f"data.walk_forward.{k}={v}" for k, v in plan.items()], *extra]
                size = cfg.n_periods * cfg.n_brands * cfg.skus_per_brand
                jobs.append(Job("scenario", f"{scenario} seed {seed}", Path(tmp) / f"{scenario}_seed{seed}", overrides, (scenario, seed), size))

        shared_root = args.shared_dir or SHARED_DIR
        panels = [] if args.no_shared else shared_panels(shared_root)
        if args.no_shared:
            notes.append("shared panels skipped (--no-shared)")
        elif not panels:
            notes.append(f"shared panels skipped: {shared_root} is absent or holds no panel.csv + truth.json")
            print(notes[-1], flush=True)
        for folder in panels:
            header = pd.read_csv(folder / "panel.csv", nrows=0).columns
            n_rows = sum(1 for _ in open(folder / "panel.csv")) - 1
            if args.quick and n_rows > QUICK_MAX_ROWS:
                notes.append(f"{folder.name} skipped in --quick ({n_rows} rows > {QUICK_MAX_ROWS})")
                print(notes[-1], flush=True)
                continue
            truth = json.loads((folder / "truth.json").read_text())
            controls = [c for c in header if c.startswith("c") and c[1:].isdigit()]
            plan = fold_plan(int(truth["n_periods"]), "W")
            overrides = [
                "data=scenario_shared",
                f"data.name=shared_{folder.name}",
                f"data.source.path={folder / 'panel.csv'}",
                f"data.source.controls=[{','.join(controls)}]",
                *[f"data.walk_forward.{k}={v}" for k, v in plan.items()],
                *extra,
            ]
            jobs.append(Job("shared", folder.name, Path(tmp) / f"shared_{folder.name}", overrides, (folder, truth, n_rows), n_rows))

        # the largest panels start first, so a parallel pool does not end on one long run; scored in list order
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            futures = {i: pool.submit(run_train, jobs[i].overrides, jobs[i].run_dir, args.logs) for i in sorted(range(len(jobs)), key=lambda i: -jobs[i].size)}
            outcomes = [futures[i].result() for i in range(len(jobs))]
        for (kind, tag, run_dir, _, context, _), (seconds, error) in zip(jobs, outcomes, strict=True):
            if error:
                failures.append((tag, error))
                print(f"{tag}: FAILED {error}", flush=True)
                continue
            if kind == "scenario":
                scenario, seed = context
                sp = generate_scenario(scenario, seed)
                scores, info = score_run(run_dir, sp.truth, sp.truth_rows)
                for model, m in scores.items():
                    records.append({"kind": "scenario", "panel": scenario, "seed": seed, "model": model, "hr_seconds": seconds, **info, **m})
                hr = scores["hr_nam"]
                print(f"{tag}: {seconds:.1f} s, HR-NAM ROI ρ {hr['roi_rank_corr']:.2f}, own MAE {hr.get('own_price_elasticity_mae', float('nan')):.3f}, gap {hr['mape_gap_pp']:.2f} pp; ridge ρ {scores['ridge']['roi_rank_corr']:.2f}", flush=True)
            else:
                folder, truth, n_rows = context
                scores, info = score_run(run_dir, shared_truth(truth), None)
                for model, m in scores.items():
                    records.append({"kind": "shared", "panel": folder.name, "seed": int(truth.get("seed", 0)), "model": model, "hr_seconds": seconds, "n_rows": n_rows, **info, **m})
                hr = scores["hr_nam"]
                print(f"{folder.name}: {seconds:.1f} s, HR-NAM ROI ρ {hr['roi_rank_corr']:.2f}, ROI MAPE {hr['roi_mape']:.1f} %; ridge ρ {scores['ridge']['roi_rank_corr']:.2f}", flush=True)
    wall = time.perf_counter() - started
    notes.append(f"1-minute load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (wall times include waiting for a shared CPU)")
    write_report(args, records, failures, notes, scenarios, seeds, epochs, wall, DESCRIPTIONS)


def write_report(args, records, failures, notes, scenarios, seeds, epochs, wall, descriptions) -> None:
    df = pd.DataFrame(records)
    keys = [k for k, _, _ in METRICS]
    cmd = "python scripts/bench_recovery.py" + (" --quick" if args.quick else "")
    if args.scenarios:
        cmd += " --scenarios " + " ".join(args.scenarios)
    if args.seeds:
        cmd += " --seeds " + " ".join(map(str, args.seeds))
    if args.epochs:
        cmd += f" --epochs {args.epochs}"
    if args.jobs > 1:
        cmd += f" --jobs {args.jobs}"
    if args.no_shared:
        cmd += " --no-shared"
    elif args.shared_dir:
        cmd += f" --shared-dir {args.shared_dir}"
    if args.overrides:
        cmd += " " + " ".join(args.overrides)
    lines = [
        "# Recovery suite: HR-NAM and ridge baselines against known truth",
        "",
        f"Command: `{cmd}`. Host: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"total wall time {wall / 60:.1f} min (HR-NAM `train.py` processes, baselines and scoring); {code_version()}.",
        "",
        "HR-NAM: `python train.py validation=walk_forward logger=none data=recovery data.source.scenario=<s> data.source.seed=<n>` "
        "(shared panels: `data=scenario_shared data.source.path=<panel.csv>`) with four walk-forward test blocks at the end of the "
        f"calendar ({_plan_text()}), "
        + (f"`trainer.max_epochs={epochs}`" if epochs else "the data config's max epochs (1500)")
        + (f", extra overrides `{' '.join(args.overrides)}`" if args.overrides else ", every other setting at its default")
        + ". ROI / contributions / elasticities are the fold ensemble's on every period (its `roi.csv`, `contributions.csv`, "
        "`elasticities.csv`). Baselines are fitted per fold on the same folds and features (`nam_mmm.evaluation.baselines`); "
        "the ridges' ROI, contributions and elasticities come from their coefficients (`nam_mmm.evaluation.baseline_attribution`), "
        "averaged over the fold fits.",
        "",
        "Metrics: ROI MAPE = mean |est − true| / true over channels; ROI Spearman = rank correlation with the true ROI; share MAE = "
        "mean |est − true| share of the total media contribution, percentage points; media pred/true = estimated / true total media "
        "contribution (sum over channels of one-channel-off contributions); own-/cross-price MAE over SKUs (cross: each SKU against its "
        "brand's true value); OOS MAPE pooled over the test folds; gap to floor = OOS MAPE − the noiseless truth's MAPE on the same rows "
        "(pp); worst fold / naive = the largest ratio of a fold's MAPE to the naive training-mean's MAPE on that fold (> 3 = an explosion).",
        "",
    ]
    if df.empty:
        lines += ["No panel finished."]
    scen = df[df["kind"] == "scenario"] if not df.empty else df
    if len(scen):
        per = scen.groupby(["panel", "model"], sort=False)[[k for k in keys if k in scen]].mean().reset_index()
        mean = scen.groupby("model", sort=False)[[k for k in keys if k in scen]].mean().reset_index().assign(panel="**mean**")
        lines += [
            f"## Generator scenarios ({len(scenarios)} × seeds {', '.join(map(str, seeds))}): mean over seeds, and over all",
            "",
            metric_table(pd.concat([per, mean], ignore_index=True), "panel"),
            "",
            "Done-when of issue 10 (mean over scenarios and seeds), HR-NAM:",
            "",
        ]
        hr_mean = mean[mean["model"] == "hr_nam"].iloc[0]
        for k, (op, thr) in TARGETS.items():
            v = hr_mean.get(k, np.nan)
            ok = meets(v, op, thr)
            better = all(meets(v, op, mean[mean["model"] == b][k].iloc[0]) for b in ("ridge", "loglog_ridge"))
            lines.append(f"- {k} {op} {thr}: {fmt(v, '{:.3f}')} — {'met' if ok else 'MISSED'}; better than both ridges: {'yes' if better else 'no'}")
        worst = scen.groupby("model")["worst_fold_vs_naive"].max()
        lines += ["- worst fold MAPE / naive fold MAPE (≤ 3): " + ", ".join(f"{m} {worst[m]:.2f}" for m in MODELS if m in worst), ""]
        lines += ["Per run:", "", metric_table(scen.assign(panel=scen["panel"] + " s" + scen["seed"].astype(str)), "panel"), ""]
        t = scen[scen["model"] == "hr_nam"][["panel", "seed", "hr_seconds", "folds", "naive_mape"]]
        lines += ["HR-NAM `train.py` wall time per run (imports included) and the naive mean's pooled MAPE:", "", t.rename(columns={"hr_seconds": "seconds"}).to_markdown(index=False, floatfmt=".1f"), ""]
        lines += ["Scenarios:", ""] + [f"- `{s}`: {descriptions[s]}" for s in scenarios] + [""]
    shared = df[df["kind"] == "shared"] if not df.empty else df
    if len(shared):
        cols = [k for k in keys if k in shared and k not in ("own_price_elasticity_mae", "cross_price_elasticity_mae", "mape_gap_pp")]
        mean = shared.groupby("model", sort=False)[cols].mean().reset_index().assign(panel="**mean**")
        lines += [
            "## Panels of ../shared/recovery/ (pymc-labs mmm-param-recovery generator)",
            "",
            "No price in these panels (no elasticities) and no noiseless mean in `truth.json`, so no noise floor: the OOS MAPE stands alone. "
            "Truth ROI and contributions are in sales units, as the model's target.",
            "",
            metric_table(pd.concat([shared[["panel", "model", *cols]], mean], ignore_index=True), "panel"),
            "",
        ]
        hr = shared[shared["model"] == "hr_nam"]
        low = [r["panel"] for _, r in hr.iterrows() if not meets(r["roi_rank_corr"], ">=", 0.8)]
        lines += [f"Done-when: ROI Spearman ≥ 0.8 on every shared panel, HR-NAM: {'met' if not low else 'MISSED on ' + ', '.join(low)}."]
        worst = shared.groupby("model")["worst_fold_vs_naive"].max()
        lines += ["Worst fold MAPE / naive fold MAPE (≤ 3): " + ", ".join(f"{m} {worst[m]:.2f}" for m in MODELS if m in worst), ""]
        t = hr[["panel", "n_rows", "hr_seconds", "folds", "naive_mape"]].rename(columns={"hr_seconds": "seconds"}).astype({"n_rows": int})
        lines += ["HR-NAM wall time per panel:", "", t.to_markdown(index=False, floatfmt=".1f"), ""]
    if failures:
        lines += ["## Runs that failed", ""] + [f"- {tag}: {err}" for tag, err in failures] + [""]
    if notes:
        lines += ["Notes: " + "; ".join(notes), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"\nwrote {args.out} ({wall / 60:.1f} min)")


if __name__ == "__main__":
    main()
