"""A run's report: the plots (``plots/*.png``), the self-contained HTML (``report.html``) and the executive PDF
(``summary.pdf``), all from the run folder alone.

``write_report(run_dir)`` is what ``report=true`` calls at the end of training and what
``python scripts/report.py run_dir=…`` calls later. The model-comparison chart reads the baselines table of
``scripts/compare_models.py`` (``experiments/bench/models_<data>.md``) when one exists for the run's data; it is
labelled as measured there, not by the run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from nam_mmm.reporting import text
from nam_mmm.reporting.html import html_table, image_uri, render_html
from nam_mmm.reporting.pdf import write_pdf
from nam_mmm.reporting.plots import parse_comparison, write_plots
from nam_mmm.reporting.run_data import RunData
from nam_mmm.reporting.style import VERDICT_COLOURS

HEALTH_TABLE = [("check", "check", "text"), ("subject", "subject", "text"), ("value", "value", "num3"), ("threshold", "threshold", "text"), ("verdict", "verdict", "text"), ("reason", "reason", "text")]
BENCH_DIR = Path(__file__).resolve().parents[2] / "experiments" / "bench"


def comparison_path(run: RunData, comparison: str | Path | None) -> Path | None:
    """``comparison`` = a path, ``"auto"`` (``experiments/bench/models_<data name>.md`` if it exists) or None."""
    if comparison is None:
        return None
    if str(comparison) == "auto":
        p = BENCH_DIR / f"models_{run.data_name}.md"
        return p if p.is_file() else None
    return Path(comparison)


def _complete(run: RunData, health: dict | None) -> list[Path]:
    """The folder-only analysis files a report needs that the run lacks (``metrics_by_unit.csv``, ``health.csv``)."""
    from nam_mmm.evaluation.health import health_checks
    from nam_mmm.reporting.run_files import unit_metrics

    written = []
    if run.metrics_by_unit is None:
        path = run.root / "metrics_by_unit.csv"
        unit_metrics(run.root).to_csv(path, index=False)
        run.metrics_by_unit = pd.read_csv(path, keep_default_na=False, na_values=[""])
        written.append(path)
    if run.health is None or health is not None:
        path = run.root / "health.csv"
        health_checks(run.root, health).to_csv(path, index=False)
        run.health = pd.read_csv(path)
        written.append(path)
    return written


def _context(run: RunData, images: dict[str, Path], comparison_file: Path | None) -> dict:
    el = run.elasticities
    roi = run.roi
    missing = {
        "model_comparison": f"no baselines table for data '{run.data_name}' (python scripts/compare_models.py data={run.data_name} writes experiments/bench/models_{run.data_name}.md)",
        "elasticity_stability": "holdout run (one model)",
        "decomposition_over_time": "no decomposition.csv in the run folder",
        "contribution_waterfall": "no decomposition.csv in the run folder",
        "brand_vs_sku": "no curves_sku.csv in the run folder",
    }
    interval_kind = str(el["interval"].iloc[0]) if len(el) else "none"
    roi_kind = str(roi["interval"].iloc[0]) if len(roi) else "none"
    mu = run.metrics_by_unit
    metric_cols = [
        ("unit", "unit", "text"), ("n", "rows", "int"), ("n_zero_actual", "zero actuals", "int"), ("r2", "R²", "num3"),
        ("mape", "MAPE %", "num2"), ("wmape", "wMAPE %", "num2"), ("mae", "MAE ₹", "money"), ("rmse", "RMSE ₹", "money"),
        ("nrmse", "NRMSE", "num3"), ("mean_error", "mean error ₹", "money"), ("median_error", "median error ₹", "money"),
        ("pearson", "Pearson", "num3"), ("spearman", "Spearman", "num3"), ("r2_within_sku_log", "within-SKU R² (log)", "num3"),
        ("skill_vs_naive", "skill vs naive", "num3"),
    ]
    summary = [text.fit_sentence(run), text.elasticity_sentence(run), *text.channel_sentences(run), text.budget_sentence(run)]
    ident_lines = text.identifiability_sentences(run)
    n_periods = run.decomposition["period"].nunique() if run.decomposition is not None else None
    skus = run.oos["sku"].nunique()
    brands = run.oos["brand"].nunique()
    data_summary = (
        f"{n_periods} periods" if n_periods else "Periods: see the config"
    ) + f", {brands} brands, {skus} SKUs, {len(run.channels)} media channels ({', '.join(run.channels) or 'none'}). Out-of-sample rows scored: {int((run.oos['fit_weight'] > 0).sum())}."
    findings = None
    if run.validation and run.validation.get("findings"):
        f = pd.DataFrame(run.validation["findings"])[["severity", "check", "message"]]
        findings = html_table(f, "validation.json", [("severity", "severity", "text"), ("check", "check", "text"), ("message", "finding", "text")])
    imputed = ", ".join(f"{k}: {v}" for k, v in (run.validation or {}).get("imputed_cells", {}).items())
    acceptance = None
    if run.acceptance is not None:
        a = pd.DataFrame(run.acceptance["criteria"])
        a["passed"] = a["passed"].map({True: "pass", False: "fail"})
        acceptance = html_table(a, "acceptance.json", [("criterion", "criterion", "text"), ("value", "value", "num4"), ("threshold", "threshold", "text"), ("passed", "verdict", "text"), ("reason", "reason", "text")], verdict_col="passed")
    folds = None
    if run.folds is not None:
        folds = html_table(run.folds, "folds.csv", [("fold", "fold", "int"), ("train", "train", "text"), ("val", "val", "text"), ("test", "test", "text"), ("r2", "R²", "num3"), ("mape", "MAPE %", "num2"), ("rmse", "RMSE ₹", "money"), ("r2_within_sku_log", "within-SKU R² (log)", "num3"), ("epochs", "epochs", "int")])
    stability = None
    if run.stability is not None:
        stability = html_table(run.stability, "elasticity_stability.csv", [("feature", "feature", "text"), ("mean", "mean", "signed3"), ("sd", "sd", "num3"), ("cv", "CV", "num3"), ("min", "min", "signed3"), ("max", "max", "signed3"), ("folds", "folds", "int")])
    el_cols = [("feature", "feature", "text"), ("elasticity", "elasticity", "signed3"), ("lower", "lower", "signed3"), ("upper", "upper", "signed3"), ("members", "models", "int"), ("n_rows", "rows", "int")]
    if "resamples" in el:
        el_cols.insert(4, ("resamples", "refits", "int"))
    brand_el = el[el["level"] == "brand"]
    roi_cols = [
        ("channel", "channel", "text"), ("spend_inr", "spend", "money"), ("contribution_inr", "contribution", "money"), ("share_of_gmv", "share of GMV", "pct_frac"),
        ("roi", "ROI", "num3"), ("roi_lower", "ROI lower", "num3"), ("roi_upper", "ROI upper", "num3"),
        ("marginal_roi", "mROI", "num3"), ("marginal_roi_lower", "mROI lower", "num3"), ("marginal_roi_upper", "mROI upper", "num3"), ("adstock_decay", "adstock decay", "num3"),
    ]
    contributions = run.contributions if run.contributions is not None else roi[["channel", "contribution_inr", "share_of_gmv"]]
    diag = run.diagnostics if run.diagnostics is not None else pd.DataFrame(columns=["sample", "test", "statistic", "p_value", "n", "verdict", "reading"])
    health = run.health
    passed = None if run.acceptance is None else run.acceptance.get("passed")
    comparison_note = ""
    if comparison_file is not None:
        comparison_note = f"From {comparison_file.name} (scripts/compare_models.py, written {dt.datetime.fromtimestamp(comparison_file.stat().st_mtime):%Y-%m-%d}): HR-NAM and the baselines fitted on the same walk-forward folds of this data set — a separate measurement, not this run."
    info = run.intervals or {}
    intervals_note = ""
    if info:
        intervals_note = f"{info.get('resamples')} refits, block length {info.get('block_length')} periods, resampled window {info.get('window')}, scored on {info.get('scored_on')}; {info.get('seconds')} s."
    nav = [("summary", "Summary"), ("data", "Data"), ("fit", "Fit"), ("health", "Health"), ("baselines", "Baselines"), ("attribution", "Elasticities & ROI"),
           ("contributions", "Contributions"), ("curves", "Curves"), ("diagnostics", "Diagnostics"), ("importance", "Importance"), ("stability", "Stability"), ("units", "Per SKU")]
    return {
        "title": f"Marketing-mix model report — {run.data_name}",
        "subtitle": f"Run {run.root.name} · {'walk-forward' if run.mode == 'walk_forward' else 'holdout'} validation · {run.root}",
        "nav": nav,
        "summary": summary,
        "identifiability_ok": bool((run.identifiability or {}).get("ok", False)),
        "identifiability_lines": ident_lines,
        "data_summary": data_summary,
        "findings": findings,
        "imputed": imputed,
        "fit_sentence": text.fit_sentence(run),
        "acceptance": acceptance,
        "acceptance_verdict": "PASS" if passed else "FAIL",
        "acceptance_colour": VERDICT_COLOURS["pass" if passed else "fail"],
        "metrics_overall": html_table(mu[mu["level"] == "all"], "metrics_by_unit.csv", metric_cols, caption="Pooled out-of-sample accuracy (rupees)"),
        "metrics_units": html_table(mu[mu["level"] != "all"], "metrics_by_unit.csv", [("level", "level", "text"), *metric_cols], caption="Out-of-sample accuracy per brand and per SKU"),
        "folds": folds,
        "health_counts": text.health_summary(run)[0],
        "health_attention": html_table(pd.concat([health[health["verdict"] == "fail"], health[health["verdict"] == "warn"]]), "health.csv", HEALTH_TABLE, verdict_col="verdict"),
        "health": html_table(health, "health.csv", [("check", "check", "text"), ("subject", "subject", "text"), ("value", "value", "num3"), ("threshold", "threshold", "text"), ("verdict", "verdict", "text"), ("reason", "reason", "text")], verdict_col="verdict"),
        "comparison_note": comparison_note,
        "elasticity_sentence": text.elasticity_sentence(run),
        "elasticity_interval": text.interval_words(interval_kind),
        "elasticities": html_table(el[el["level"] == "all"], "elasticities.csv", el_cols, caption="Overall elasticities (d log GMV / d log x)"),
        "brand_elasticities": html_table(brand_el, "elasticities.csv", [("unit", "brand", "text"), *el_cols]) if len(brand_el) else None,
        "channel_lines": text.channel_sentences(run),
        "roi_interval": text.interval_words(roi_kind),
        "intervals_note": intervals_note,
        "roi": html_table(roi, "roi.csv", roi_cols),
        "contributions": html_table(contributions, "contributions.csv", [("channel", "channel", "text"), ("contribution_inr", "contribution", "money"), ("share_of_gmv", "share of predicted GMV", "pct_frac")]),
        "diagnostics": html_table(diag, "diagnostics.csv", [("sample", "sample", "text"), ("test", "test", "text"), ("statistic", "statistic", "num3"), ("p_value", "p-value", "pvalue"), ("n", "n", "int"), ("verdict", "verdict", "text"), ("reading", "what it means", "text")], verdict_col="verdict"),
        "stability": stability,
        "images": {k: image_uri(v) for k, v in images.items()},
        "missing": missing,
        "footer": f"nam-mmm · written {dt.datetime.now():%Y-%m-%d %H:%M} from the files of {run.root}",
    }


def write_report(run_dir: str | Path, comparison: str | Path | None = "auto", health: dict | None = None, feature: str | None = None, html: bool = True, pdf: bool = True) -> list[Path]:
    """Write ``plots/*.png``, ``report.html`` and ``summary.pdf`` into ``run_dir`` from its files; returns every
    file written (``metrics_by_unit.csv`` / ``health.csv`` too when the run lacked them or ``health`` overrides
    the thresholds). ``comparison``: the baselines table (see :func:`comparison_path`); ``feature``: the feature
    of the brand-vs-SKU chart (default own price, else the first channel)."""
    from nam_mmm.evaluation.diagnostics import feature_importance

    run = RunData.load(run_dir)
    written = _complete(run, health)
    comparison_file = comparison_path(run, comparison)
    importance = feature_importance(run.decomposition) if run.decomposition is not None else None
    images = write_plots(run, run.root / "plots", parse_comparison(comparison_file) if comparison_file else None, comparison_file.name if comparison_file else "", feature, importance)
    written += list(images.values())
    if html:
        path = run.root / "report.html"
        path.write_text(render_html(_context(run, images, comparison_file)), encoding="utf-8")
        written.append(path)
    if pdf:
        written.append(write_pdf(run, run.root / "summary.pdf"))
    return written
