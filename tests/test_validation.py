"""Validation and cleaning of a panel CSV: one-line errors that point at the cell, imputation, outages, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import assert_one_line
from nam_mmm.data.features.table import FeatureConfig, build_features
from nam_mmm.data.panel import FIT_WEIGHT, PERIOD, ROW, Panel, spend_col
from nam_mmm.data.quality.cleaning import OUTAGE_COLUMN, prepare_panel
from nam_mmm.data.sources.panel_csv import load_panel_csv
from nam_mmm.errors import DataError

HEADER = "date,brand,sku,sales,price,disc,tv_spend,search_spend"
ROLES = dict(
    date="date",
    hierarchy=["brand", "sku"],
    target="sales",
    media=["tv_spend", "search_spend"],
    own_price="price",
    discount="disc",
)
SKUS = [("A", "A1"), ("A", "A2"), ("B", "B1"), ("B", "B2")]
MONTHS = pd.date_range("2024-01-01", periods=6, freq="MS")


def _lines(skip: str | None = None, low_month: str | None = None, factor: float = 0.01) -> list[str]:
    """4 SKUs × 6 months, national spend; data row i is file line i + 2."""
    out = []
    for m in MONTHS:
        if skip and m == pd.Timestamp(skip):
            continue
        for i, (brand, sku) in enumerate(SKUS):
            sales = (1000 + 10 * m.month + 50 * i) * (factor if low_month and m == pd.Timestamp(low_month) else 1)
            out.append(f"{m:%Y-%m-%d},{brand},{sku},{sales},{10.0 + i},0.1,{500.0 + m.month},{200.0}")
    return out


def _set(lines: list[str], index: int, column: str, value: str) -> list[str]:
    lines = list(lines)
    cells = lines[index].split(",")
    cells[HEADER.split(",").index(column)] = value
    lines[index] = ",".join(cells)
    return lines


def _write(tmp_path: Path, lines: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "sales.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def _prepare(path: Path, **cleaning) -> Panel:
    return prepare_panel(load_panel_csv(path, **ROLES), cleaning or None)


# ---------------------------------------------------------------- errors ---------------------------------


def test_clean_file_has_no_findings(tmp_path: Path) -> None:
    panel = _prepare(_write(tmp_path, _lines()))
    assert panel.report.findings == [] and panel.report.imputed_cells == {}
    assert panel.report.to_text() == "validation: no findings"


def test_duplicate_period_sku_rows(tmp_path: Path) -> None:
    lines = _lines()
    lines.append(lines[5])  # line 7 (Feb, A2) repeated as the last line, 26
    path = _write(tmp_path, lines)
    with pytest.raises(DataError) as exc:
        _prepare(path)
    assert_one_line(exc.value, str(path), "column 'sku'", "rows 7, 26", "share a (period, SKU) pair", "'A2'")


def test_gap_in_the_calendar_names_the_missing_month(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines(skip="2024-03-01"))
    with pytest.raises(DataError) as exc:
        _prepare(path)
    assert_one_line(exc.value, str(path), "column 'date'", "periods 2024-03-01", "1 period(s) missing")


def test_negative_spend_names_the_file_column_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _set(_lines(), 6, "tv_spend", "-5"))  # data row 6 = line 8
    with pytest.raises(DataError) as exc:
        _prepare(path)
    text = assert_one_line(exc.value, str(path), "column 'tv_spend'", "rows 8", "spend >= 0")
    assert "spend_tv_spend" not in text  # the column as written in the file, not the internal name


def test_discount_outside_unit_interval(tmp_path: Path) -> None:
    path = _write(tmp_path, _set(_set(_lines(), 6, "disc", "1.5"), 9, "disc", "-0.2"))
    with pytest.raises(DataError) as exc:
        _prepare(path)
    assert_one_line(exc.value, str(path), "column 'disc'", "rows 8, 11", "discount depth in [0, 1]")


def test_several_errors_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, _set(_set(_lines(), 6, "disc", "1.5"), 3, "tv_spend", "-1"))
    with pytest.raises(DataError) as exc:
        _prepare(path)
    assert_one_line(exc.value, "column 'disc'", "(and 1 more errors)")


# ---------------------------------------------------------------- imputation and outages -----------------


def test_missing_spend_is_zero_and_counted(tmp_path: Path) -> None:
    # a whole period blank (every SKU's row): nothing was spent that month
    lines = _lines()
    for i in range(4, 8):  # the 4 rows of February (file lines 6..9)
        lines = _set(lines, i, "tv_spend", "")
    panel = _prepare(_write(tmp_path, lines))
    f = panel.frame
    assert (f.loc[f[ROW].between(6, 9), spend_col("tv_spend")] == 0.0).all()
    assert panel.report.imputed_cells == {spend_col("tv_spend"): 4}
    (miss,) = panel.report.by_check("missing")
    assert miss.severity == "warning" and miss.column == "tv_spend" and miss.rows == [6, 7, 8, 9]
    assert "treated as zero spend" in miss.message
    assert "4 cells imputed" in panel.report.to_text()


def test_one_blank_cell_in_national_spend_keeps_the_period_value(tmp_path: Path) -> None:
    # national TV spend is 500 + month on every row; one SKU's cell is blank in February: the period's
    # spend must stay 502 (not 0 for that row, which would make the channel look SKU-level and be summed)
    panel = _prepare(_write(tmp_path, _set(_lines(), 6, "tv_spend", "")))
    assert panel.national_spend()
    by_period = panel.spend_by_period()[spend_col("tv_spend")]
    assert by_period.to_list() == [500.0 + m.month for m in MONTHS]
    assert panel.report.imputed_cells == {spend_col("tv_spend"): 1}


def test_missing_spend_can_be_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _set(_lines(), 6, "tv_spend", "NA"))
    with pytest.raises(DataError) as exc:
        _prepare(path, missing_spend="error")
    assert_one_line(exc.value, str(path), "column 'tv_spend'", "rows 8", "missing_spend is 'error'")


def _outage_file(tmp_path: Path) -> Path:
    return _write(tmp_path, _lines(low_month="2024-04-01", factor=0.01))


def _april(panel: Panel) -> pd.Series:
    return panel.frame[PERIOD] == pd.Timestamp("2024-04-01")


def test_outage_is_detected_and_named(tmp_path: Path) -> None:
    panel = _prepare(_outage_file(tmp_path), outage_action="keep")
    (finding,) = panel.report.by_check("outage")
    assert finding.periods == ["2024-04-01"]
    assert finding.column == "sales"
    assert finding.rows == sorted(panel.frame.loc[_april(panel), ROW])
    assert "action: keep" in finding.message
    # a looser threshold does not call a 1 % month an outage
    assert not _prepare(_outage_file(tmp_path), outage_threshold=0.005).report.by_check("outage")


def test_outage_drop_excludes_the_period_from_the_fit(tmp_path: Path) -> None:
    panel = _prepare(_outage_file(tmp_path), outage_action="drop")
    april = _april(panel)
    assert (panel.frame.loc[april, FIT_WEIGHT] == 0).all()
    assert (panel.frame.loc[~april, FIT_WEIGHT] == 1).all()
    assert OUTAGE_COLUMN not in panel.frame and OUTAGE_COLUMN not in panel.controls
    assert pd.Timestamp("2024-04-01") in panel.periods  # the period stays in the calendar for carry-over


def test_outage_flag_adds_a_control(tmp_path: Path) -> None:
    panel = _prepare(_outage_file(tmp_path), outage_action="flag")
    april = _april(panel)
    assert (panel.frame.loc[april, OUTAGE_COLUMN] == 1).all()
    assert (panel.frame.loc[~april, OUTAGE_COLUMN] == 0).all()
    assert OUTAGE_COLUMN in panel.controls
    assert (panel.frame[FIT_WEIGHT] == 1).all()
    # the flag enters the model as an unconstrained 0/1 control
    table = build_features(panel, FeatureConfig(model_features=["price"], max_lag=2))
    spec = {s.name: s for s in table.model_specs}[OUTAGE_COLUMN]
    assert (spec.role, spec.center, spec.scale) == ("control", "none", "none")


def test_outage_keep_changes_nothing(tmp_path: Path) -> None:
    panel = _prepare(_outage_file(tmp_path), outage_action="keep")
    assert OUTAGE_COLUMN not in panel.frame and OUTAGE_COLUMN not in panel.controls
    assert (panel.frame[FIT_WEIGHT] == 1).all()


# ---------------------------------------------------------------- the inspect CLI ------------------------


def _inspect(repo_root: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/inspect_data.py", *overrides],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_bad_csv_is_one_error_line_and_exit_2(tmp_path: Path, repo_root: Path) -> None:
    lines = [line.replace(",0.1,", ",") for line in _set(_lines(), 6, "tv_spend", "-5")]
    path = _write(tmp_path, lines, header="date,brand,sku,gmv,price,spend_tv,spend_search")
    res = _inspect(repo_root, "data=panel_csv", f"data.source.path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    err_lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1, res.stderr
    assert err_lines[0].startswith("error: ")
    for part in (str(path), "column 'spend_tv'", "rows 8", "spend >= 0"):
        assert part in err_lines[0]
    assert not (tmp_path / "run" / "report.txt").exists()


def test_cli_synthetic_default_writes_the_report_files(tmp_path: Path, repo_root: Path) -> None:
    run = tmp_path / "run"
    res = _inspect(repo_root, f"hydra.run.dir={run}")
    assert res.returncode == 0, res.stderr
    for name in ("report.txt", "validation.json", "features.csv", "vif.csv", "folds.csv"):
        assert (run / name).is_file(), name
    report = (run / "report.txt").read_text()
    assert "source: synthetic(seed=7)" in report
    assert "104 periods" in report and "20 SKUs" in report
    assert "== fold plan: walk_forward, 4 folds ==" in report
    assert "decomposition: done: 104 weeks" in report
    folds = pd.read_csv(run / "folds.csv")
    assert list(folds.columns) == ["fold", "train", "val", "test"] and len(folds) == 4
    features = pd.read_csv(run / "features.csv").set_index("feature")
    assert features.loc["price", "role"] == "own_price" and bool(features.loc["price", "in_model"])
    assert bool(features.loc["adstock_tv", "in_model"]) and not bool(features.loc["festive", "in_model"])
    vif = pd.read_csv(run / "vif.csv")
    assert {"feature", "vif"} <= set(vif.columns) and (vif["vif"] >= 1 - 1e-9).all()
    validation = json.loads((run / "validation.json").read_text())
    assert set(validation) == {"findings", "imputed_cells"}
    assert not [f for f in validation["findings"] if f["severity"] == "error"]
