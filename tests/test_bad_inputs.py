"""Bad inputs that used to train to confident numbers without a word (issue 14): each is now refused with a
one-line error naming file, column and rows, or reported as a finding with a severity.

The numbered sections follow the issue's list of found cases; the last sections hold further kinds of bad
input. Every file is written into ``tmp_path``; input files are never modified (checked around a real run).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import assert_one_line, train_in_process
from nam_mmm.data.folds.splitters import HoldoutSplitter, WalkForwardSplitter
from nam_mmm.data.panel import FIT_WEIGHT, PERIOD, SKU, Panel
from nam_mmm.data.quality.cleaning import CleaningConfig, prepare_panel
from nam_mmm.data.quality.report import Finding, ValidationReport
from nam_mmm.data.sources.panel_csv import load_panel_csv
from nam_mmm.errors import ConfigError, DataError, NamMMMError

HEADER = "date,brand,sku,gmv,price,spend_tv,spend_search"
ROLES = dict(date="date", hierarchy=["brand", "sku"], target="gmv", media="spend_*", own_price="price")
SKUS = [("A", "A1"), ("A", "A2"), ("B", "B1")]


def _rows(
    n: int = 10,
    freq: str = "MS",
    start: str = "2024-01-01",
    skus=SKUS,
    date_fmt: str = "%Y-%m-%d",
) -> list[list[str]]:
    """``n`` periods × ``skus``, national spend; data row i is file line i + 2 (period-major order)."""
    out = []
    for t, p in enumerate(pd.date_range(start, periods=n, freq=freq)):
        for i, (brand, sku) in enumerate(skus):
            gmv = 1000 + 10 * t + 100 * i + (37 * t * (i + 1)) % 50
            out.append([p.strftime(date_fmt), brand, sku, f"{gmv}", f"{10.0 + i + 0.1 * (t % 3)}", f"{500.0 + 20 * (t % 4)}", f"{200.0 + 5 * t}"])
    return out


def _write(tmp_path: Path, rows, header: str = HEADER, name: str = "sales.csv", sep: str = ",") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header.replace(",", sep), *(sep.join(r) for r in rows)]) + "\n")
    return path


def _col(name: str) -> int:
    return HEADER.split(",").index(name)


def _set(rows, index: int, column: str, value: str):
    rows = [list(r) for r in rows]
    rows[index][_col(column)] = value
    return rows


def _prepare(path: Path, cleaning: dict | None = None, **roles) -> Panel:
    return prepare_panel(load_panel_csv(path, **{**ROLES, **roles}), cleaning)


def _lines_of(rows, sku: str) -> list[int]:
    return [i + 2 for i, r in enumerate(rows) if r[_col("sku")] == sku]


# ---------------------------------------------------------------- 1. a SKU without a usable target ----------------


@pytest.mark.parametrize("value, what", [("0", "zero"), ("", "empty")], ids=["all-zero", "all-empty"])
def test_1_sku_with_no_usable_target_is_refused(tmp_path: Path, value: str, what: str) -> None:
    rows = [_set([r], 0, "gmv", value)[0] if r[_col("sku")] == "A2" else r for r in _rows()]
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        _prepare(path)
    text = assert_one_line(exc.value, str(path), "column 'gmv'", "SKU 'A2'", "no usable target", f"values {what}", "empty_sku: drop")
    assert f"rows {', '.join(map(str, _lines_of(rows, 'A2')[:8]))}" in text


def test_1_sku_with_no_usable_target_can_be_dropped_with_a_warning(tmp_path: Path) -> None:
    rows = [_set([r], 0, "gmv", "0")[0] if r[_col("sku")] == "A2" else r for r in _rows()]
    panel = _prepare(_write(tmp_path, rows), {"empty_sku": "drop"})
    assert "A2" not in panel.skus and panel.skus == ["A1", "B1"]
    assert not (panel.frame[SKU] == "A2").any()
    assert set(panel.dropped_units) == {"A2"}
    (finding,) = panel.report.by_check("no_target")
    assert finding.severity == "warning" and finding.rows == _lines_of(rows, "A2") and "dropped" in finding.message


def test_1_all_skus_without_target_is_an_error_even_when_dropping(tmp_path: Path) -> None:
    rows = [_set([r], 0, "gmv", "0")[0] for r in _rows()]
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        _prepare(path, {"empty_sku": "drop"})
    assert_one_line(exc.value, str(path), "column 'gmv'", "no SKU has a usable target")


# ---------------------------------------------------------------- 2. spend far outside its range ------------------


def test_2_spend_of_1e30_is_a_range_finding_naming_the_rows(tmp_path: Path) -> None:
    rows = _rows()
    for i in (12, 13, 14):  # the three rows of period 5 (national spend): file lines 14, 15, 16
        rows = _set(rows, i, "spend_tv", "1e30")
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = panel.report.by_check("range")
    assert finding.severity == "warning" and finding.column == "spend_tv"
    assert finding.rows == [14, 15, 16] and finding.periods == ["2024-05-01"]
    assert "1e+30" in finding.message


def test_2_range_thresholds_are_settings(tmp_path: Path) -> None:
    rows = _rows()
    for i in (12, 13, 14):
        rows = _set(rows, i, "spend_tv", "30000")  # ~50× the usual 500-560
    path = _write(tmp_path, rows)
    assert _prepare(path).report.by_check("range")  # default fences: 10× the quartile at least
    assert not _prepare(path, {"range_min_ratio": 100.0}).report.by_check("range")


def test_2_normal_spend_variation_is_not_flagged(tmp_path: Path) -> None:
    rows = _rows()
    for i in (12, 13, 14):
        rows = _set(rows, i, "spend_tv", "1500")  # a campaign month: 3× the usual
    assert not _prepare(_write(tmp_path, rows)).report.by_check("range")


# ---------------------------------------------------------------- 3. day-first dates -------------------------------


def test_3_day_first_monthly_dates_are_read_day_first(tmp_path: Path) -> None:
    # 24 months dated 01/MM/YYYY: every number is <= 12, but only day first gives an evenly spaced calendar
    path = _write(tmp_path, _rows(n=24, date_fmt="%d/%m/%Y"))
    panel = load_panel_csv(path, **ROLES)
    assert panel.freq == "MS"
    assert list(panel.periods) == list(pd.date_range("2024-01-01", periods=24, freq="MS"))


def test_3_day_first_told_by_a_day_above_12(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(n=10, freq="W-MON", start="2024-01-01", date_fmt="%d/%m/%Y"))
    panel = load_panel_csv(path, **ROLES)
    assert panel.freq == "W-MON" and panel.periods[1] == pd.Timestamp("2024-01-08")


def test_3_an_order_that_cannot_be_told_is_refused(tmp_path: Path) -> None:
    # 12 months of one year as 01/MM/YYYY: also 12 consecutive days month first
    path = _write(tmp_path, _rows(n=12, date_fmt="%d/%m/%Y"))
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    assert_one_line(exc.value, str(path), "column 'date'", "ambiguous date order", "'01/02/2024'", "date_format")


@pytest.mark.parametrize("date_format", ["day_first", "%d/%m/%Y"])
def test_3_date_format_setting_decides(tmp_path: Path, date_format: str) -> None:
    path = _write(tmp_path, _rows(n=12, date_fmt="%d/%m/%Y"))
    panel = load_panel_csv(path, **ROLES, date_format=date_format)
    assert panel.freq == "MS" and len(panel.periods) == 12


# ---------------------------------------------------------------- 4. warnings on the console ----------------------


def test_4_sku_names_differing_only_in_case_are_a_warning(tmp_path: Path) -> None:
    rows = _rows()
    rows = [r[:2] + ["a1"] + r[3:] if r[_col("sku")] == "A1" and i >= 15 else r for i, r in enumerate(rows)]
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = panel.report.by_check("near_duplicate")
    assert finding.severity == "warning" and finding.column == "sku"
    assert "'A1', 'a1'" in finding.message and "2 different SKUs" in finding.message
    assert finding.rows == sorted(_lines_of(rows, "A1") + _lines_of(rows, "a1"))


def test_4_console_summary_counts_by_severity_and_shows_the_first_findings() -> None:
    report = ValidationReport()
    report.extend(
        [
            Finding("info", "consistency", "total spend equals the channel sum", file="/d/sales.csv"),
            Finding("warning", "coverage", "SKU 'A2' has 5 of 6 periods", file="/d/sales.csv", column="sku", periods=["2024-03-01"]),
            Finding("warning", "near_duplicate", "SKU names 'A1', 'a1' differ only in letter case", file="/d/sales.csv", rows=list(range(2, 30))),
        ]
    )
    report.count_imputed("spend_tv", 4)
    text = report.console_summary(max_lines=2)
    lines = text.splitlines()
    assert lines[0] == "validation: 0 errors, 2 warnings, 1 info; 4 cells imputed in 1 column"
    assert lines[1].strip().startswith("[warning] coverage: SKU 'A2' has 5 of 6 periods (sales.csv, column 'sku', periods 2024-03-01)")
    assert lines[2].strip().startswith("[warning] near_duplicate:") and "rows 2, 3, 4 (+25 more)" in lines[2]
    assert lines[3].strip() == "(+1 more in validation.json)"
    assert len(lines) == 4
    assert report.has_warnings
    assert report.warning_note() == "note: this run had 2 validation warnings (coverage, near_duplicate); see validation.json"
    clean = ValidationReport()
    assert not clean.has_warnings and clean.warning_note() == ""
    assert clean.console_summary() == "validation: 0 errors, 0 warnings, 0 info"


def test_4_inspect_says_when_a_whole_sku_dropped_out(tmp_path: Path, repo_root: Path) -> None:
    rows = [_set([r], 0, "gmv", "0")[0] if r[_col("sku")] == "B1" else r for r in _rows(n=12)]
    path = _write(tmp_path, rows)
    res = subprocess.run(
        [sys.executable, "scripts/inspect_data.py", "data=panel_csv", f"data.source.path={path}", "data.cleaning.empty_sku=drop",
         "validation=holdout", "data.holdout.test_size=2", "data.holdout.val_size=2", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=repo_root, capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stderr
    assert "warning: SKU 'B1' dropped: no usable target" in res.stdout
    assert "2 SKUs" in res.stdout


# ---------------------------------------------------------------- 5. target also matched as media -----------------


def test_5_target_matched_by_the_media_pattern_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows())
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **{**ROLES, "target": "spend_tv"})
    assert_one_line(exc.value, str(path), "column 'spend_tv'", "line 1", "'spend_*' also matches the target column")


# ---------------------------------------------------------------- 6. errors name the real cause --------------------


def test_6_monthly_freq_on_weekly_data_is_a_frequency_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(n=12, freq="W-MON"))
    with pytest.raises(DataError) as exc:
        _prepare(path, freq="MS")
    text = assert_one_line(exc.value, str(path), "column 'date'", "frequency mismatch", "freq 'MS'", "2024-01-01, 2024-01-08", "W-MON")
    assert "share a (period, SKU) pair" not in text


def test_6_reversed_hierarchy_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows())
    with pytest.raises(DataError) as exc:
        _prepare(path, hierarchy=["sku", "brand"])
    text = assert_one_line(exc.value, str(path), "column 'brand'", "hierarchy looks reversed", "hierarchy: [brand, sku]")
    assert "share a (period, SKU) pair" not in text


def test_6_semicolon_separated_file_names_the_separator(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(), sep=";")
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    text = assert_one_line(exc.value, str(path), "line 1", "';'-separated")
    assert "matches no column" not in text


def test_6_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    rows = _rows()
    rows[6][_col("sku")] = "Caf\u00e9"  # data row 6 = line 8
    path = tmp_path / "latin1.csv"
    path.write_bytes(("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n").encode("latin-1"))
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    text = assert_one_line(exc.value, str(path), "line 8", "not a UTF-8 text file", "0xe9", "'é' in Windows-1252")
    assert "at byte" not in text


# ---------------------------------------------------------------- 7. too few periods -------------------------------


def test_7_five_weekly_periods_are_too_few_for_holdout(tmp_path: Path) -> None:
    from nam_mmm.data.quality.validation import check_min_periods

    panel = _prepare(_write(tmp_path, _rows(n=5, freq="W-MON")))
    folds = HoldoutSplitter(test_size=1, val_size=1).split(panel.periods)  # fits on 3 periods
    with pytest.raises(DataError) as exc:
        check_min_periods(len(panel.periods), "holdout", folds, source=panel.source)
    assert_one_line(exc.value, panel.source, "too few periods: 5", "holdout validation needs at least 8")


def test_7_minimum_per_mode() -> None:
    from nam_mmm.data.quality.validation import check_min_periods

    periods = pd.date_range("2024-01-01", periods=10, freq="MS")
    holdout = HoldoutSplitter(test_size=3, val_size=3).split(periods)  # 4 training periods
    with pytest.raises(DataError) as exc:
        check_min_periods(10, "holdout", holdout)
    assert_one_line(exc.value, "too few training periods", "training split has 4 of 10", "at least 5")
    check_min_periods(10, "holdout", HoldoutSplitter(test_size=2, val_size=2).split(periods))  # 6: enough
    one_fold = WalkForwardSplitter(initial_train=8, test_size=2, step=2).split(periods)
    with pytest.raises(DataError) as exc:
        check_min_periods(10, "walk_forward", one_fold)
    assert_one_line(exc.value, "too few walk-forward folds: 1", "at least 2")
    check_min_periods(10, "walk_forward", WalkForwardSplitter(initial_train=6, test_size=1, step=1, val_size=1).split(periods))
    with pytest.raises(ValueError):
        check_min_periods(10, "kfold")


# ---------------------------------------------------------------- strict -------------------------------------------


def test_strict_turns_chosen_warnings_into_errors(tmp_path: Path) -> None:
    rows = [r for r in _rows() if not (r[_col("sku")] == "B1" and r[0] == "2024-03-01")]  # B1 misses March
    path = _write(tmp_path, rows)
    assert _prepare(path).report.by_check("coverage")[0].severity == "warning"
    with pytest.raises(DataError) as exc:
        _prepare(path, {"strict": True})
    assert_one_line(exc.value, str(path), "column 'sku'", "SKU 'B1' has 9 of 10 periods", "cleaning.strict is true")
    with pytest.raises(DataError):
        _prepare(path, {"strict": True, "strict_checks": ["coverage"]})
    panel = _prepare(path, {"strict": True, "strict_checks": ["range", "near_duplicate"]})  # coverage not chosen
    assert panel.report.by_check("coverage")[0].severity == "warning"
    with pytest.raises(ConfigError) as cfg_exc:
        CleaningConfig(strict=True, strict_checks=["coverge"])
    assert "unknown check(s) coverge" in str(cfg_exc.value)


# ---------------------------------------------------------------- further kinds of bad input -----------------------


def test_tab_separated_file_names_the_separator(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(), sep="\t", name="sales.tsv")
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    assert_one_line(exc.value, str(path), "tab-separated")


def test_utf16_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "utf16.csv"
    path.write_bytes(("\n".join([HEADER, *(",".join(r) for r in _rows())]) + "\n").encode("utf-16"))
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    assert_one_line(exc.value, str(path), "UTF-16", "save it as UTF-8")


def test_brand_names_differing_only_in_case(tmp_path: Path) -> None:
    # SKU B2 is filed under brand 'b', B1 under 'B': one brand split in two
    rows = [[r[0], "b" if r[2] == "B2" else r[1], *r[2:]] for r in _rows(skus=[("A", "A1"), ("B", "B1"), ("B", "B2")])]
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = [f for f in panel.report.by_check("near_duplicate") if f.column == "brand"]
    assert "brand names 'B', 'b'" in finding.message


def test_sku_names_differing_only_in_inner_spaces(tmp_path: Path) -> None:
    rows = _rows(skus=[("A", "Acme 1L"), ("A", "Acme 2L")])
    rows = [r[:2] + ["Acme  1L"] + r[3:] if r[2] == "Acme 1L" and i > 10 else r for i, r in enumerate(rows)]
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = panel.report.by_check("near_duplicate")
    assert "'Acme  1L', 'Acme 1L'" in finding.message


def test_price_far_outside_the_skus_range(tmp_path: Path) -> None:
    panel = _prepare(_write(tmp_path, _set(_rows(), 7, "price", "1e6")))  # line 9 (period 3, SKU A2)
    (finding,) = panel.report.by_check("range")
    assert finding.column == "price" and finding.rows == [9] and "outside the SKU's own price range" in finding.message


def test_price_a_hundred_times_too_small(tmp_path: Path) -> None:
    panel = _prepare(_write(tmp_path, _set(_rows(), 7, "price", "0.11")))
    (finding,) = panel.report.by_check("range")
    assert finding.column == "price" and finding.rows == [9]


def test_dates_mixing_day_first_and_month_first(tmp_path: Path) -> None:
    rows = _rows(n=20, freq="W-MON", date_fmt="%m/%d/%Y")
    rows[3][0] = "15/01/2024"  # line 5 is day first; the other dates are month first (01/15/2024 ...)
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    assert_one_line(exc.value, str(path), "column 'date'", "dates mix two orders", "'15/01/2024' is day first")


def test_dotted_day_first_dates_are_detected(tmp_path: Path) -> None:
    panel = load_panel_csv(_write(tmp_path, _rows(n=10, freq="W-MON", date_fmt="%d.%m.%Y")), **ROLES)
    assert panel.periods[-1] == pd.Timestamp("2024-03-04") and panel.freq == "W-MON"


def test_daily_freq_on_monthly_data_is_a_frequency_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path, _rows(n=10))
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES, freq="D")
    text = assert_one_line(exc.value, str(path), "frequency mismatch", "freq 'D'", "only 10 have data", "the dates look MS")
    assert "missing from the calendar" not in text


def test_channel_with_no_spend_at_all(tmp_path: Path) -> None:
    rows = _rows()
    for i in range(len(rows)):
        rows = _set(rows, i, "spend_search", "0" if i % 2 else "")
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = panel.report.by_check("no_spend")
    assert finding.severity == "warning" and finding.column == "spend_search" and "channel 'search'" in finding.message


def test_media_pattern_matching_another_role_is_reported(tmp_path: Path) -> None:
    rows = [r + [str(700.0)] for r in _rows()]
    path = _write(tmp_path, rows, header=HEADER + ",spend_total")
    panel = load_panel_csv(path, **ROLES, total_spend="spend_total")
    assert panel.channels == ["tv", "search"]
    (finding,) = panel.report.by_check("roles")
    assert finding.severity == "info" and "spend_total" in finding.message


def test_single_row_sku_is_called_out(tmp_path: Path) -> None:
    rows = _rows() + [["2024-10-01", "B", "B9", "900", "9.0", "560.0", "245.0"]]
    panel = _prepare(_write(tmp_path, rows))
    (finding,) = [f for f in panel.report.by_check("coverage") if "'B9'" in f.message]
    assert "a single row" in finding.message and finding.severity == "warning"


def test_impossible_day_and_month(tmp_path: Path) -> None:
    rows = _rows(n=10, freq="W-MON", date_fmt="%m/%d/%Y")
    rows[4][0] = "13/13/2024"
    path = _write(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        load_panel_csv(path, **ROLES)
    assert_one_line(exc.value, str(path), "column 'date'", "rows 6", "unparseable date '13/13/2024'")


def test_bad_cleaning_values_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        CleaningConfig(empty_sku="ignore")
    with pytest.raises(ConfigError):
        CleaningConfig(range_min_ratio=0.5)
    with pytest.raises(ConfigError):
        CleaningConfig(strict="yes")


# ---------------------------------------------------------------- a real run on a dirty file, and serving ----------


@pytest.fixture(scope="module")
def dropped_run(tmp_path_factory) -> dict:
    """A tiny holdout run on a panel CSV with one SKU whose GMV is all zero, dropped by the cleaning setting."""
    from nam_mmm.data.sources.synthetic import load_synthetic

    base = tmp_path_factory.mktemp("dropped")
    panel = load_synthetic(n_brands=2, skus_per_brand=2, n_periods=40, seed=3)
    frame = panel.frame.rename(columns={PERIOD: "date"})
    cols = ["date", "brand", "sku", "gmv", "price", *panel.spend_columns]
    dead = frame[frame["sku"] == "brand_2_sku_2"].assign(sku="brand_2_sku_9", gmv=0.0)
    data = pd.concat([frame, dead])[cols]
    data["date"] = data["date"].dt.strftime("%Y-%m-%d")
    csv = base / "input" / "sales.csv"
    csv.parent.mkdir()
    data.to_csv(csv, index=False)
    digest, mtime = hashlib.sha256(csv.read_bytes()).hexdigest(), csv.stat().st_mtime_ns
    overrides = [
        "logger=none", "data=panel_csv", f"data.source.path={csv}", "data.cleaning.empty_sku=drop",
        "data.holdout.test_size=6", "data.holdout.val_size=4", "trainer.max_epochs=30", "trainer.min_epochs=1",
    ]
    train_in_process(base / "run", overrides, base=[])
    return {"dir": base / "run", "csv": csv, "digest": digest, "mtime": mtime, "base": base}


def test_a_dropped_sku_gets_no_output_rows_and_inputs_stay_untouched(dropped_run) -> None:
    run = dropped_run["dir"]
    predictions = pd.read_csv(run / "predictions.csv")
    assert "brand_2_sku_9" not in set(predictions["sku"]) and len(set(predictions["sku"])) == 4
    assert "brand_2_sku_9" not in set(pd.read_csv(run / "oos_predictions.csv")["sku"])
    elasticities = pd.read_csv(run / "elasticities.csv")
    assert "brand_2_sku_9" not in set(elasticities["unit"]) and "brand_2_sku_2" in set(elasticities["unit"])
    validation = (run / "validation.json").read_text()
    assert "brand_2_sku_9" in validation and "no_target" in validation
    csv = dropped_run["csv"]
    assert hashlib.sha256(csv.read_bytes()).hexdigest() == dropped_run["digest"] and csv.stat().st_mtime_ns == dropped_run["mtime"]
    outside = [p for p in dropped_run["base"].rglob("*") if p.is_file() and run not in p.parents]
    assert outside == [csv]  # nothing written next to the input or elsewhere outside the run folder


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The predictor of a tiny clean synthetic holdout run and its last period's rows as a request."""
    from omegaconf import OmegaConf

    from nam_mmm.entry import load_table
    from nam_mmm.serving.predictor import Predictor

    run = tmp_path_factory.mktemp("served") / "run"
    train_in_process(run)
    predictor = Predictor.load(run / "predictor.pt")
    table = load_table(OmegaConf.load(run / "config.yaml").data)
    rows = predictor.request_rows(table.frame)
    return predictor, rows[rows["period"] == rows["period"].max()].reset_index(drop=True)


@pytest.fixture(scope="module")
def predictor(served):
    return served[0]


@pytest.fixture(scope="module")
def last_rows(served) -> pd.DataFrame:
    return served[1]


def test_8_empty_request_is_a_one_line_bad_request(predictor, last_rows) -> None:
    from mlflow.exceptions import MlflowException

    from nam_mmm.serving.mlflow_model import NAMPyfunc

    with pytest.raises(DataError) as exc:
        predictor.predict(last_rows.iloc[:0])
    assert_one_line(exc.value, "request", "empty request")
    model = NAMPyfunc()
    model.predictor = predictor
    with pytest.raises(MlflowException) as err:
        model.predict(None, last_rows.iloc[:0])
    assert err.value.get_http_status_code() == 400 and "empty request" in err.value.message


@pytest.mark.parametrize("column, value", [("spend_tv", np.inf), ("price", -np.inf), ("spend_search", "inf")])
def test_2_serving_refuses_non_finite_values(predictor, last_rows, column: str, value) -> None:
    request = last_rows.copy()
    request[column] = request[column].astype(object)
    request.loc[1, column] = value
    with pytest.raises(DataError) as exc:
        predictor.predict(request)
    assert_one_line(exc.value, "request", f"column '{column}'", "rows 2", "not a finite number")


def test_2_serving_flags_inputs_far_outside_the_training_range(predictor, last_rows) -> None:
    plain = predictor.predict(last_rows)
    assert (plain["out_of_range"] == "").all()
    request = last_rows.copy()
    request["spend_tv"] = 1e30  # national spend: every SKU row of the period
    request.loc[2, "price"] = 1e6
    out = predictor.predict(request)
    assert len(out) == len(request)
    assert all("spend_tv=1e+30 outside 10x the training range" in note for note in out["out_of_range"])
    assert "price=1e+06" in out.loc[2, "out_of_range"] and "price" not in out.loc[0, "out_of_range"]
    # the factor is a setting: a factor of 1e40 accepts even 1e30
    assert (predictor.predict(request, range_factor=1e40)["out_of_range"] == "").all()


def test_a_request_for_the_dropped_sku_is_refused(dropped_run) -> None:
    from nam_mmm.serving.predictor import Predictor

    predictor = Predictor.load(dropped_run["dir"] / "predictor.pt")
    assert "brand_2_sku_9" not in predictor.spec.skus and "brand_2_sku_2" in predictor.spec.skus
    request = pd.DataFrame({"period": [predictor.spec.periods[-1]], "sku": ["brand_2_sku_9"], **{c: [1.0] for c in predictor.spec.inputs}})
    with pytest.raises(NamMMMError) as exc:
        predictor.predict(request)
    assert_one_line(exc.value, "request", "column 'sku'", "not trained on: brand_2_sku_9")


def test_zero_fit_rows_of_a_sku_are_listed(tmp_path: Path) -> None:
    rows = [_set([r], 0, "gmv", "")[0] if r[_col("sku")] == "A2" and i % 2 else r for i, r in enumerate(_rows())]
    panel = _prepare(_write(tmp_path, rows))  # A2: half missing, half present: still fitted
    assert panel.units_without_fit_rows() == []
    panel.frame.loc[panel.frame[SKU] == "A2", FIT_WEIGHT] = 0.0
    assert panel.units_without_fit_rows() == ["A2"]
