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


METRIC_TABLE = [
    ("unit", "unit", "text"), ("n", "rows", "int"), ("n_zero_actual", "zero actuals", "int"), ("r2", "R²", "num3"),
    ("mape", "MAPE %", "num2"), ("wmape", "wMAPE %", "num2"), ("mae", "MAE ₹", "money"), ("rmse", "RMSE ₹", "money"),
    ("nrmse", "NRMSE", "num3"), ("mean_error", "mean error ₹", "money"), ("median_error", "median error ₹", "money"),
    ("pearson", "Pearson", "num3"), ("spearman", "Spearman", "num3"), ("r2_within_sku_log", "within-SKU R² (log)", "num3"),
    ("skill_vs_naive", "skill vs naive", "num3"),
]
ROI_TABLE = [
    ("channel", "channel", "text"), ("spend_inr", "spend", "money"), ("contribution_inr", "contribution", "money"), ("share_of_gmv", "share of GMV", "pct_frac"),
    ("roi", "ROI", "num3"), ("roi_lower", "ROI lower", "num3"), ("roi_upper", "ROI upper", "num3"),
    ("marginal_roi", "mROI", "num3"), ("marginal_roi_lower", "mROI lower", "num3"), ("marginal_roi_upper", "mROI upper", "num3"), ("adstock_decay", "adstock decay", "num3"),
]
ELASTICITY_TABLE = [("feature", "feature", "text"), ("elasticity", "elasticity", "signed3"), ("lower", "lower", "signed3"), ("upper", "upper", "signed3"), ("members", "models", "int"), ("n_rows", "rows", "int")]
FINDINGS_TABLE = [("severity", "severity", "text"), ("check", "check", "text"), ("message", "finding", "text")]
ACCEPTANCE_TABLE = [("criterion", "criterion", "text"), ("value", "value", "num4"), ("threshold", "threshold", "text"), ("passed", "verdict", "text"), ("reason", "reason", "text")]
FOLDS_TABLE = [("fold", "fold", "int"), ("train", "train", "text"), ("val", "val", "text"), ("test", "test", "text"), ("r2", "R²", "num3"), ("mape", "MAPE %", "num2"), ("rmse", "RMSE ₹", "money"), ("r2_within_sku_log", "within-SKU R² (log)", "num3"), ("epochs", "epochs", "int")]
STABILITY_TABLE = [("feature", "feature", "text"), ("mean", "mean", "signed3"), ("sd", "sd", "num3"), ("cv", "CV", "num3"), ("min", "min", "signed3"), ("max", "max", "signed3"), ("folds", "folds", "int")]
CONTRIBUTION_TABLE = [("channel", "channel", "text"), ("contribution_inr", "contribution", "money"), ("share_of_gmv", "share of predicted GMV", "pct_frac")]
DIAGNOSTICS_TABLE = [("sample", "sample", "text"), ("test", "test", "text"), ("statistic", "statistic", "num3"), ("p_value", "p-value", "pvalue"), ("n", "n", "int"), ("verdict", "verdict", "text"), ("reading", "what it means", "text")]
NAV = [("summary", "Summary"), ("data", "Data"), ("fit", "Fit"), ("health", "Health"), ("baselines", "Baselines"), ("attribution", "Elasticities & ROI"),
       ("contributions", "Contributions"), ("curves", "Curves"), ("diagnostics", "Diagnostics"), ("importance", "Importance"), ("stability", "Stability"), ("units", "Per SKU")]


def _missing(run: RunData) -> dict[str, str]:
    """Why a picture that is not drawn is missing, by picture."""
    return {
        "model_comparison": f"no baselines table for data '{run.data_name}' (python scripts/compare_models.py data={run.data_name} writes experiments/bench/models_{run.data_name}.md)",
        "elasticity_stability": "holdout run (one model)",
        "decomposition_over_time": "no decomposition.csv in the run folder",
        "contribution_waterfall": "no decomposition.csv in the run folder",
        "brand_vs_sku": "no curves_sku.csv in the run folder",
    }


def _data_summary(run: RunData) -> str:
    n_periods = run.decomposition["period"].nunique() if run.decomposition is not None else None
    skus = run.oos["sku"].nunique()
    brands = run.oos["brand"].nunique()
    return (
        f"{n_periods} periods" if n_periods else "Periods: see the config"
    ) + f", {brands} brands, {skus} SKUs, {len(run.channels)} media channels ({', '.join(run.channels) or 'none'}). Out-of-sample rows scored: {int((run.oos['fit_weight'] > 0).sum())}."


def _validation_context(run: RunData) -> dict:
    """The data validation findings table (None without findings) and the imputed cells."""
    findings = None
    if run.validation and run.validation.get("findings"):
        f = pd.DataFrame(run.validation["findings"])[["severity", "check", "message"]]
        findings = html_table(f, "validation.json", FINDINGS_TABLE)
    imputed = ", ".join(f"{k}: {v}" for k, v in (run.validation or {}).get("imputed_cells", {}).items())
    return {"findings": findings, "imputed": imputed}


def _acceptance_table(run: RunData) -> dict | None:
    """The walk-forward acceptance criteria with their verdicts (None in a holdout run)."""
    if run.acceptance is None:
        return None
    a = pd.DataFrame(run.acceptance["criteria"])
    a["passed"] = a["passed"].map({True: "pass", False: "fail"})
    return html_table(a, "acceptance.json", ACCEPTANCE_TABLE, verdict_col="passed")


def _notes(run: RunData, comparison_file: Path | None) -> dict[str, str]:
    """Where the baselines table comes from, and how the bootstrap intervals were made (empty when absent)."""
    comparison_note = ""
    if comparison_file is not None:
        comparison_note = f"From {comparison_file.name} (scripts/compare_models.py, written {dt.datetime.fromtimestamp(comparison_file.stat().st_mtime):%Y-%m-%d}): HR-NAM and the baselines fitted on the same walk-forward folds of this data set — a separate measurement, not this run."
    info = run.intervals or {}
    intervals_note = ""
    if info:
        intervals_note = f"{info.get('resamples')} refits, block length {info.get('block_length')} periods, resampled window {info.get('window')}, scored on {info.get('scored_on')}; {info.get('seconds')} s."
        if info.get("penalty_allowance"):
            intervals_note += f" Media penalty allowance: {info['penalty_allowance']}."
    return {"comparison_note": comparison_note, "intervals_note": intervals_note}


def _fit_context(run: RunData) -> dict:
    """Accuracy, acceptance and folds."""
    mu = run.metrics_by_unit
    passed = None if run.acceptance is None else run.acceptance.get("passed")
    return {
        "fit_sentence": text.fit_sentence(run),
        "acceptance": _acceptance_table(run),
        "acceptance_verdict": "PASS" if passed else "FAIL",
        "acceptance_colour": VERDICT_COLOURS["pass" if passed else "fail"],
        "metrics_overall": html_table(mu[mu["level"] == "all"], "metrics_by_unit.csv", METRIC_TABLE, caption="Pooled out-of-sample accuracy (rupees)"),
        "metrics_units": html_table(mu[mu["level"] != "all"], "metrics_by_unit.csv", [("level", "level", "text"), *METRIC_TABLE], caption="Out-of-sample accuracy per brand and per SKU"),
        "folds": html_table(run.folds, "folds.csv", FOLDS_TABLE) if run.folds is not None else None,
    }


def _attribution_context(run: RunData) -> dict:
    """Elasticities, ROI and contributions with the words for their intervals."""
    el, roi = run.elasticities, run.roi
    interval_kind = str(el["interval"].iloc[0]) if len(el) else "none"
    roi_kind = str(roi["interval"].iloc[0]) if len(roi) else "none"
    el_cols = list(ELASTICITY_TABLE)
    if "resamples" in el:
        el_cols.insert(4, ("resamples", "refits", "int"))
    brand_el = el[el["level"] == "brand"]
    contributions = run.contributions if run.contributions is not None else roi[["channel", "contribution_inr", "share_of_gmv"]]
    return {
        "elasticity_sentence": text.elasticity_sentence(run),
        "elasticity_interval": text.interval_words(interval_kind),
        "elasticities": html_table(el[el["level"] == "all"], "elasticities.csv", el_cols, caption="Overall elasticities (d log GMV / d log x)"),
        "brand_elasticities": html_table(brand_el, "elasticities.csv", [("unit", "brand", "text"), *el_cols]) if len(brand_el) else None,
        "channel_lines": text.channel_sentences(run),
        "roi_interval": text.interval_words(roi_kind),
        "roi": html_table(roi, "roi.csv", ROI_TABLE),
        "contributions": html_table(contributions, "contributions.csv", CONTRIBUTION_TABLE),
    }


def _context(run: RunData, images: dict[str, Path], comparison_file: Path | None) -> dict:
    """What ``templates/report.html.j2`` shows, by section."""
    diag = run.diagnostics if run.diagnostics is not None else pd.DataFrame(columns=["sample", "test", "statistic", "p_value", "n", "verdict", "reading"])
    health = run.health
    return {
        "title": f"Marketing-mix model report — {run.data_name}",
        "subtitle": f"Run {run.root.name} · {'walk-forward' if run.mode == 'walk_forward' else 'holdout'} validation · {run.root}",
        "nav": NAV,
        "summary": [text.fit_sentence(run), text.elasticity_sentence(run), *text.channel_sentences(run), text.budget_sentence(run)],
        "identifiability_ok": bool((run.identifiability or {}).get("ok", False)),
        "identifiability_lines": text.identifiability_sentences(run),
        "data_summary": _data_summary(run),
        **_validation_context(run),
        **_fit_context(run),
        "health_counts": text.health_summary(run)[0],
        "health_attention": html_table(pd.concat([health[health["verdict"] == "fail"], health[health["verdict"] == "warn"]]), "health.csv", HEALTH_TABLE, verdict_col="verdict"),
        "health": html_table(health, "health.csv", HEALTH_TABLE, verdict_col="verdict"),
        **_notes(run, comparison_file),
        **_attribution_context(run),
        "diagnostics": html_table(diag, "diagnostics.csv", DIAGNOSTICS_TABLE, verdict_col="verdict"),
        "stability": html_table(run.stability, "elasticity_stability.csv", STABILITY_TABLE) if run.stability is not None else None,
        "images": {k: image_uri(v) for k, v in images.items()},
        "missing": _missing(run),
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
